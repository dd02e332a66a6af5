import os
from collections import defaultdict


class Index:
    """An index of words to the files that contain them."""

    def __init__(self):
        self.words = defaultdict(set)

    def add(self, path):
        with open(path) as f:
            for line in f:
                for word in line.split():
                    self.words[word].add(path)

    def lookup(self, word):
        <CURSOR>

    def size(self):
        return len(self.words)
