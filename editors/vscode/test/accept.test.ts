// Partial accept: next word / next line splitting and what remains after what was typed.
import assert from "node:assert/strict";
import { test } from "node:test";

import { nextLine, nextWord, partialAccept } from "../src/accept";

test("next word: a word with the spaces before it", () => {
  assert.equal(nextWord("  foo(bar)"), "  foo");
  assert.equal(nextWord("foo_bar2 baz"), "foo_bar2");
  assert.equal(nextWord("$el.value"), "$el");
});

test("next word: a run of punctuation is one word, a bracket before a word stops there", () => {
  assert.equal(nextWord("(bar)"), "(");
  assert.equal(nextWord(" += 1"), " +=");
  assert.equal(nextWord("):\n    pass"), "):");
});

test("next word: crosses a line break into the next line's first word", () => {
  assert.equal(nextWord("\n    return x"), "\n    return");
  assert.equal(nextWord("\r\n\treturn x"), "\r\n\treturn");
});

test("next word: non-ASCII letters are word characters; astral characters are not split", () => {
  assert.equal(nextWord("naïve_größe = 1"), "naïve_größe");
  assert.equal(nextWord("😀😀 x"), "😀😀");
  assert.equal(nextWord("é😀"), "é");
});

test("next word: only whitespace, or nothing, is taken whole", () => {
  assert.equal(nextWord("   "), "   ");
  assert.equal(nextWord(""), "");
});

test("next line: up to the line break, or the break and the line after it", () => {
  assert.equal(nextLine("return a + b\n    x = 1"), "return a + b");
  assert.equal(nextLine("\n    x = 1\n    y = 2"), "\n    x = 1");
  assert.equal(nextLine("\r\n    x = 1\r\n"), "\r\n    x = 1");
  assert.equal(nextLine("single"), "single");
});

test("walking a suggestion word by word rebuilds it exactly", () => {
  const text = "total = sum(x * 2 for x in xs)\n    return total / len(xs)";
  const shown = { uri: "file:///a.py", start: 10, insertText: text };
  let typed = "";
  let steps = 0;
  for (;;) {
    const p = partialAccept(shown, typed, "word");
    if (!p) break;
    typed += p.piece;
    steps++;
    assert.ok(steps < 100);
    if (p.last) {
      typed += p.rest;
      break;
    }
  }
  assert.equal(typed, text);
  assert.ok(steps > 10, `expected many words, got ${steps}`);
});

test("walking a suggestion line by line", () => {
  const text = "if x:\n        y = 1\n    return y";
  const shown = { uri: "u", start: 0, insertText: text };
  const pieces: string[] = [];
  let typed = "";
  for (let p = partialAccept(shown, typed, "line"); p; p = partialAccept(shown, typed, "line")) {
    pieces.push(p.piece);
    typed += p.piece;
  }
  assert.deepEqual(pieces, ["if x:", "\n        y = 1", "\n    return y"]);
});

test("partial accept continues after characters the user typed himself", () => {
  const shown = { uri: "u", start: 0, insertText: "print(value)" };
  assert.deepEqual(partialAccept(shown, "pri", "word"), { piece: "nt", rest: "(value)", last: false });
  assert.deepEqual(partialAccept(shown, "print(value", "word"), { piece: ")", rest: "", last: true });
});

test("partial accept refuses when the document disagrees or nothing is left", () => {
  const shown = { uri: "u", start: 0, insertText: "print(value)" };
  assert.equal(partialAccept(shown, "prx", "word"), undefined);
  assert.equal(partialAccept(shown, "print(value)", "word"), undefined);
});

test("trailing whitespace after the last word makes the piece the last one", () => {
  const shown = { uri: "u", start: 0, insertText: "x = 1\n" };
  const p = partialAccept(shown, "x = ", "word");
  assert.deepEqual(p, { piece: "1", rest: "\n", last: true });
});
