(comment) @comment
(string_literal) @string
(char_literal) @string
