package main

import (
	"fmt"
	"strings"
)

// Words splits a line into its words.
func Words(line string) []string {
	return strings.Fields(line)
}

func main() {
	for _, w := range Words("a b c") {
		<CURSOR>
	}
}
