// Partial acceptance of a suggestion: the next word or the next line of what is still to be
// inserted, given the suggestion and what the user has typed of it since it was shown.
// Pure: no `vscode` import (unit-tested under node, reused by the browser test page).

export type Unit = "word" | "line";

const wordChar = /[\p{L}\p{N}_$]/u;
const space = /[ \t]/;

function newlineAt(text: string, i: number): number {
  if (text.startsWith("\r\n", i)) return 2;
  return text[i] === "\n" || text[i] === "\r" ? 1 : 0;
}

// The next word of `text`: the whitespace before it (a line break and the next line's indentation
// included), then a run of word characters, or else a run of other non-space characters
// (operators, brackets). "  foo(bar)" -> "  foo", "(bar)" -> "(", "\n    return x" -> "\n    return".
export function nextWord(text: string): string {
  let i = 0;
  while (i < text.length) {
    const nl = newlineAt(text, i);
    if (nl) i += nl;
    else if (space.test(text[i])) i++;
    else break;
  }
  if (i >= text.length) return text;
  const first = Array.from(text.slice(i, i + 2))[0];
  const isWord = wordChar.test(first);
  for (const ch of Array.from(text.slice(i))) {
    if (newlineAt(ch, 0) || space.test(ch) || wordChar.test(ch) !== isWord) break;
    i += ch.length;
  }
  return text.slice(0, i);
}

// The next line of `text`: up to its first line break (not included). When `text` starts with a
// line break, that break and the line after it: accepting line by line walks down the suggestion.
export function nextLine(text: string): string {
  let i = 0;
  const lead = newlineAt(text, 0);
  if (lead) i = lead;
  while (i < text.length && !newlineAt(text, i)) i++;
  return text.slice(0, i);
}

export function nextPiece(text: string, unit: Unit): string {
  return unit === "word" ? nextWord(text) : nextLine(text);
}

// A suggestion as shown: `insertText` replaces the document from `start` (an offset) to the cursor
// at the time it was shown (and possibly some text after it).
export interface ShownSuggestion {
  uri: string;
  start: number;
  insertText: string;
}

export interface PartialAccept {
  piece: string;   // text to insert at the cursor now
  rest: string;    // what remains of the suggestion after it
  last: boolean;   // the piece completes the suggestion
}

// What to insert for a partial accept. `typed` is the document's text from the suggestion's
// start to the cursor now. Undefined when the document no longer agrees with the suggestion
// (the user typed something else) or nothing is left.
export function partialAccept(shown: ShownSuggestion, typed: string, unit: Unit): PartialAccept | undefined {
  if (!shown.insertText.startsWith(typed)) return undefined;
  const remaining = shown.insertText.slice(typed.length);
  if (remaining.length === 0) return undefined;
  const piece = nextPiece(remaining, unit);
  const rest = remaining.slice(piece.length);
  return { piece, rest, last: rest.trim().length === 0 };
}
