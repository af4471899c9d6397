//! Lexer and recursive-descent parser for filters and PATCH paths.

use std::fmt;

use serde_json::Value;

use super::{
    AttrPath, CompValue, CompareOp, Filter, MAX_FILTER_DEPTH, parse_attr_path, shorten,
    validate_attribute_name,
};

/// Parses a whole filter expression.
pub(super) fn parse_filter_expression(input: &str) -> Result<Filter, SyntaxError> {
    let mut parser = Parser::new(input)?;
    if parser.tokens.is_empty() {
        return Err(SyntaxError::new(1, "the filter is empty"));
    }
    let filter = parser.parse_or(false)?;
    parser.expect_end("the expression")?;
    Ok(filter)
}

/// Parses a whole PATCH path into the attribute, the optional value filter and the optional
/// sub-attribute after the filter.
pub(super) fn parse_patch_path_expression(
    input: &str,
) -> Result<(AttrPath, Option<Filter>, Option<String>), SyntaxError> {
    let mut parser = Parser::new(input)?;
    let parsed = parser.parse_patch_path()?;
    parser.expect_end("the path")?;
    Ok(parsed)
}

/// A lexing or parsing error at a 1-based character position.
#[derive(Debug)]
pub(super) struct SyntaxError {
    position: usize,
    message: String,
}

impl SyntaxError {
    fn new(position: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            position,
            message: message.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "at position {}: {}", self.position, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    /// A quoted string, unescaped.
    String(String),
    /// Any other run of characters: an attribute path, an operator, a keyword or a number.
    Word(String),
}

impl fmt::Display for TokenKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::OpenParen => formatter.write_str("'('"),
            TokenKind::CloseParen => formatter.write_str("')'"),
            TokenKind::OpenBracket => formatter.write_str("'['"),
            TokenKind::CloseBracket => formatter.write_str("']'"),
            TokenKind::String(text) => write!(formatter, "string \"{}\"", shorten(text)),
            TokenKind::Word(text) => write!(formatter, "'{}'", shorten(text)),
        }
    }
}

#[derive(Debug)]
struct Token {
    kind: TokenKind,
    /// 1-based character position of the first character.
    position: usize,
    /// Whether whitespace separates this token from the previous one. `emails[...].value`
    /// needs the sub-attribute right after the bracket.
    after_whitespace: bool,
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// Splits the input into tokens. Every iteration consumes at least one character, so the loop
/// ends after at most `input.len()` iterations.
fn lex(input: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    let mut after_whitespace = false;

    while let Some(&c) = chars.get(index) {
        let position = index + 1;
        if c.is_whitespace() {
            after_whitespace = true;
            index += 1;
            continue;
        }

        let kind = match c {
            '(' => {
                index += 1;
                TokenKind::OpenParen
            }
            ')' => {
                index += 1;
                TokenKind::CloseParen
            }
            '[' => {
                index += 1;
                TokenKind::OpenBracket
            }
            ']' => {
                index += 1;
                TokenKind::CloseBracket
            }
            '"' => {
                let (text, next_index) = lex_string(&chars, index)?;
                index = next_index;
                TokenKind::String(text)
            }
            _ => {
                let start = index;
                while chars.get(index).is_some_and(|&c| !is_delimiter(c)) {
                    index += 1;
                }
                TokenKind::Word(chars[start..index].iter().collect())
            }
        };
        tokens.push(Token {
            kind,
            position,
            after_whitespace,
        });
        after_whitespace = false;
    }
    Ok(tokens)
}

/// Reads a JSON string starting at the opening quote at `start`. Returns the unescaped text
/// and the index after the closing quote.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), SyntaxError> {
    let mut text = String::new();
    let mut index = start + 1;
    loop {
        let Some(&c) = chars.get(index) else {
            return Err(SyntaxError::new(start + 1, "unterminated string"));
        };
        index += 1;
        match c {
            '"' => return Ok((text, index)),
            '\\' => {
                let escape_position = index;
                let Some(&escaped) = chars.get(index) else {
                    return Err(SyntaxError::new(start + 1, "unterminated string"));
                };
                index += 1;
                let unescaped = match escaped {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let (decoded, next_index) =
                            lex_unicode_escape(chars, index, escape_position)?;
                        index = next_index;
                        decoded
                    }
                    other => {
                        return Err(SyntaxError::new(
                            escape_position,
                            format!("invalid escape '\\{other}' in string"),
                        ));
                    }
                };
                text.push(unescaped);
            }
            other => text.push(other),
        }
    }
}

/// Decodes the hex digits of a `\u` escape at `index`, combining a UTF-16 surrogate pair.
fn lex_unicode_escape(
    chars: &[char],
    index: usize,
    escape_position: usize,
) -> Result<(char, usize), SyntaxError> {
    let invalid = || SyntaxError::new(escape_position, "invalid \\u escape in string");
    let read_hex = |at: usize| -> Option<u32> {
        let digits: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&digits, 16).ok()
    };

    let first = read_hex(index).ok_or_else(invalid)?;
    let mut next_index = index + 4;
    let code_point = if (0xD800..0xDC00).contains(&first) {
        let has_low_escape =
            chars.get(next_index) == Some(&'\\') && chars.get(next_index + 1) == Some(&'u');
        if !has_low_escape {
            return Err(invalid());
        }
        let second = read_hex(next_index + 2).ok_or_else(invalid)?;
        if !(0xDC00..0xE000).contains(&second) {
            return Err(invalid());
        }
        next_index += 6;
        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
    } else {
        first
    };
    let decoded = char::from_u32(code_point).ok_or_else(invalid)?;
    Ok((decoded, next_index))
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
    /// Position reported for errors at the end of the input.
    end_position: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Parser, SyntaxError> {
        Ok(Parser {
            tokens: lex(input)?,
            next: 0,
            depth: 0,
            end_position: input.chars().count() + 1,
        })
    }

    fn expect_end(&self, construct: &str) -> Result<(), SyntaxError> {
        match self.peek() {
            Some(token) => Err(SyntaxError::new(
                token.position,
                format!("unexpected {} after the end of {construct}", token.kind),
            )),
            None => Ok(()),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn advance(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.next);
        if token.is_some() {
            self.next += 1;
        }
        token
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: TokenKind::Word(word), .. }) if word.eq_ignore_ascii_case(keyword))
    }

    fn end_of_input(&self, expected: &str) -> SyntaxError {
        SyntaxError::new(
            self.end_position,
            format!("unexpected end of input, expected {expected}"),
        )
    }

    fn enter_group(&mut self, position: usize) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(SyntaxError::new(
                position,
                format!("the expression is nested deeper than {MAX_FILTER_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn expect_close(&mut self, close: TokenKind, open_position: usize) -> Result<(), SyntaxError> {
        let expected = format!("{close} to match the one at position {open_position}");
        match self.advance() {
            Some(token) if token.kind == close => {
                self.depth -= 1;
                Ok(())
            }
            Some(token) => Err(SyntaxError::new(
                token.position,
                format!("expected {expected}, found {}", token.kind),
            )),
            None => Err(self.end_of_input(&expected)),
        }
    }

    /// `or` has the lowest precedence.
    fn parse_or(&mut self, in_value_filter: bool) -> Result<Filter, SyntaxError> {
        let mut left = self.parse_and(in_value_filter)?;
        while self.peek_keyword("or") {
            self.advance();
            let right = self.parse_and(in_value_filter)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, in_value_filter: bool) -> Result<Filter, SyntaxError> {
        let mut left = self.parse_unary(in_value_filter)?;
        while self.peek_keyword("and") {
            self.advance();
            let right = self.parse_unary(in_value_filter)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// Parses a group, a negated group or an attribute expression.
    fn parse_unary(&mut self, in_value_filter: bool) -> Result<Filter, SyntaxError> {
        const EXPECTED: &str = "an attribute path, 'not' or '('";
        let Some(token) = self.advance() else {
            return Err(self.end_of_input(EXPECTED));
        };
        let position = token.position;
        match token.kind.clone() {
            TokenKind::OpenParen => {
                self.enter_group(position)?;
                let inner = self.parse_or(in_value_filter)?;
                self.expect_close(TokenKind::CloseParen, position)?;
                Ok(inner)
            }
            // `not` is a keyword only before "(" (RFC 7644 §3.4.2.2), so an attribute
            // named "not" still parses.
            TokenKind::Word(word)
                if word.eq_ignore_ascii_case("not")
                    && matches!(
                        self.peek(),
                        Some(Token {
                            kind: TokenKind::OpenParen,
                            ..
                        })
                    ) =>
            {
                let open_position = self.peek().map_or(position, |token| token.position);
                self.advance();
                self.enter_group(open_position)?;
                let inner = self.parse_or(in_value_filter)?;
                self.expect_close(TokenKind::CloseParen, open_position)?;
                Ok(Filter::Not(Box::new(inner)))
            }
            TokenKind::Word(word) => {
                self.parse_attribute_expression(&word, position, in_value_filter)
            }
            other => Err(SyntaxError::new(
                position,
                format!("expected {EXPECTED}, found {other}"),
            )),
        }
    }

    fn parse_path_word(word: &str, position: usize) -> Result<AttrPath, SyntaxError> {
        parse_attr_path(word).map_err(|message| {
            SyntaxError::new(position, format!("invalid attribute path: {message}"))
        })
    }

    fn parse_attribute_expression(
        &mut self,
        word: &str,
        position: usize,
        in_value_filter: bool,
    ) -> Result<Filter, SyntaxError> {
        let path = Parser::parse_path_word(word, position)?;
        let Some(Token {
            kind: TokenKind::OpenBracket,
            position: open_position,
            ..
        }) = self.peek()
        else {
            return self.parse_comparison(path, position);
        };
        let open_position = *open_position;

        if in_value_filter {
            return Err(SyntaxError::new(
                open_position,
                "value filters cannot be nested",
            ));
        }
        if path.sub_attribute.is_some() {
            return Err(SyntaxError::new(
                open_position,
                "a value filter must follow an attribute without a sub-attribute",
            ));
        }
        self.advance();
        self.enter_group(open_position)?;
        let inner = self.parse_or(true)?;
        self.expect_close(TokenKind::CloseBracket, open_position)?;

        // Entra ID sends `emails[type eq "work"].value eq "x"`, which is outside the RFC
        // grammar but means the same as `emails[type eq "work" and value eq "x"]`.
        let filter = match self.take_adjacent_sub_attribute()? {
            Some((sub_attribute, sub_position)) => {
                let comparison =
                    self.parse_comparison(AttrPath::new(sub_attribute), sub_position)?;
                Filter::And(Box::new(inner), Box::new(comparison))
            }
            None => inner,
        };
        Ok(Filter::ValuePath {
            path,
            filter: Box::new(filter),
        })
    }

    /// Consumes a `.name` word written right after `]`, returning the name and its position.
    fn take_adjacent_sub_attribute(&mut self) -> Result<Option<(String, usize)>, SyntaxError> {
        let Some(Token {
            kind: TokenKind::Word(word),
            position,
            after_whitespace: false,
        }) = self.peek()
        else {
            return Ok(None);
        };
        let Some(name) = word.strip_prefix('.') else {
            return Ok(None);
        };
        let (name, position) = (name.to_owned(), *position);
        validate_attribute_name(&name, word)
            .map_err(|message| SyntaxError::new(position, message))?;
        self.advance();
        Ok(Some((name, position)))
    }

    fn parse_comparison(
        &mut self,
        path: AttrPath,
        path_position: usize,
    ) -> Result<Filter, SyntaxError> {
        let expected = format!("an operator after '{}'", shorten(&path.to_string()));
        let Some(token) = self.advance() else {
            return Err(self.end_of_input(&expected));
        };
        let TokenKind::Word(operator) = &token.kind else {
            return Err(SyntaxError::new(
                token.position,
                format!("expected {expected}, found {}", token.kind),
            ));
        };
        if operator.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::parse(operator) else {
            let message = format!(
                "unknown operator '{}' after the attribute at position {path_position}",
                shorten(operator)
            );
            return Err(SyntaxError::new(token.position, message));
        };
        let value = self.parse_value(op)?;
        Ok(Filter::Compare { path, op, value })
    }

    fn parse_value(&mut self, op: CompareOp) -> Result<CompValue, SyntaxError> {
        let expected = format!("a value after '{}'", op.as_str());
        let Some(token) = self.advance() else {
            return Err(self.end_of_input(&expected));
        };
        let position = token.position;
        match &token.kind {
            TokenKind::String(text) => Ok(CompValue::String(text.clone())),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("true") => Ok(CompValue::Bool(true)),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("false") => {
                Ok(CompValue::Bool(false))
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("null") => Ok(CompValue::Null),
            TokenKind::Word(word) => match serde_json::from_str::<Value>(word) {
                Ok(Value::Number(number)) => Ok(CompValue::Number(number)),
                _ => Err(SyntaxError::new(
                    position,
                    format!(
                        "invalid value '{}': expected a quoted string, a number, true, false or null",
                        shorten(word)
                    ),
                )),
            },
            other => Err(SyntaxError::new(
                position,
                format!("expected {expected}, found {other}"),
            )),
        }
    }

    fn parse_patch_path(
        &mut self,
    ) -> Result<(AttrPath, Option<Filter>, Option<String>), SyntaxError> {
        let Some(token) = self.advance() else {
            return Err(self.end_of_input("an attribute path"));
        };
        let position = token.position;
        let TokenKind::Word(word) = token.kind.clone() else {
            return Err(SyntaxError::new(
                position,
                format!("expected an attribute path, found {}", token.kind),
            ));
        };
        let attr = Parser::parse_path_word(&word, position)?;

        let Some(Token {
            kind: TokenKind::OpenBracket,
            position: open_position,
            ..
        }) = self.peek()
        else {
            return Ok((attr, None, None));
        };
        let open_position = *open_position;
        if attr.sub_attribute.is_some() {
            return Err(SyntaxError::new(
                open_position,
                "a value filter must follow an attribute without a sub-attribute",
            ));
        }
        self.advance();
        self.enter_group(open_position)?;
        let filter = self.parse_or(true)?;
        self.expect_close(TokenKind::CloseBracket, open_position)?;
        let sub_attribute = self.take_adjacent_sub_attribute()?.map(|(name, _)| name);
        Ok((attr, Some(filter), sub_attribute))
    }
}
