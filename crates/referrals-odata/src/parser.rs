//! A recursive-descent parser of the subset.
//!
//! ```text
//! filter   := or
//! or       := and ("or" and)*
//! and      := unary ("and" unary)*
//! unary    := "not" negated | compare
//! negated  := "not" negated | "(" or ")" | lambda  -- never followed by a comparison operator
//! compare  := primary (op primary)?        -- a bare primary must be a group or a lambda
//! primary  := "(" or ")" | lambda | member | literal
//! lambda   := member "/" ("any"|"all") "(" name ":" or ")"
//! member   := name ("/" name)*
//! ```
//!
//! `not` follows OData's table of precedence (OData v4.01 URL Conventions, 5.1.1.16): it is a
//! unary operator, which binds tighter than every comparison, so `not status eq 'New'` means
//! `(not status) eq 'New'` to a standard OData parser, a type error there. Such a text is
//! refused here with a message that says to write `not (status eq 'New')`, rather than read
//! as the negation that its writer probably meant and that the service does not read.

use crate::lexer::{Spanned, Token, tokens};
use crate::{
    CompareOp, Expr, LambdaKind, Literal, Member, Operand, OrderItem, ParseError, SelectItem,
};

const COMPARISONS: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];

const KEYWORDS: [&str; 13] = [
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "true", "false", "null", "any",
];

/// Parses a `$filter` expression.
///
/// ```
/// use referrals_odata::{parse_filter, Expr, CompareOp, Literal};
///
/// let expr = parse_filter("status eq 'New' and team/any(t:t/email eq 'O''Neil@contoso.com')").unwrap();
/// assert_eq!(expr.to_string(), "status eq 'New' and team/any(t:t/email eq 'O''Neil@contoso.com')");
/// let error = parse_filter("status eq").unwrap_err();
/// assert_eq!(error.position, 10);
/// ```
pub fn parse_filter(text: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(text)?;
    let expr = parser.or()?;
    parser.finish()?;
    Ok(expr)
}

/// Parses an `$orderby` list: `member [asc|desc]`, comma-separated.
pub fn parse_orderby(text: &str) -> Result<Vec<OrderItem>, ParseError> {
    let mut parser = Parser::new(text)?;
    let mut items = Vec::new();
    loop {
        let member = parser.member()?;
        let descending = match parser.peek_name() {
            Some("desc") => {
                parser.next();
                true
            }
            Some("asc") => {
                parser.next();
                false
            }
            _ => false,
        };
        items.push(OrderItem { member, descending });
        match parser.peek() {
            Some(Token::Comma) => {
                parser.next();
            }
            _ => break,
        }
    }
    parser.finish()?;
    Ok(items)
}

/// Parses a `$select` list: member names, comma-separated.
pub fn parse_select(text: &str) -> Result<Vec<SelectItem>, ParseError> {
    let mut parser = Parser::new(text)?;
    let mut items = Vec::new();
    loop {
        let (token, position) = parser.expect_any("a member name")?;
        match token {
            Token::Name(name) => items.push(SelectItem { name, position }),
            other => {
                return Err(parser.error_at(
                    position,
                    format!("expected a member name, found {}", other.describe()),
                ));
            }
        }
        match parser.peek() {
            Some(Token::Comma) => {
                parser.next();
            }
            _ => break,
        }
    }
    parser.finish()?;
    Ok(items)
}

/// How deep groups, `not`s and lambdas may nest: the parser recurses on them, and a filter of
/// thousands of `(` must get an error, not overflow the stack of the service that reads it.
const MAX_DEPTH: usize = 64;

/// How many comparisons one filter may hold. `a and b and c ...` makes a tree as deep as it is
/// long, which later passes (printing, evaluating, dropping) walk recursively.
const MAX_TERMS: usize = 256;

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    /// The length of the text in characters, for errors at its end.
    end: usize,
    /// How many groups, `not`s and lambdas enclose the current position.
    depth: usize,
    /// How many comparisons have been read.
    terms: usize,
}

impl Parser {
    fn new(text: &str) -> Result<Self, ParseError> {
        let tokens = tokens(text)?;
        if tokens.is_empty() {
            return Err(ParseError {
                position: 1,
                message: "an empty expression".into(),
            });
        }
        Ok(Self {
            tokens,
            at: 0,
            end: text.chars().count(),
            depth: 0,
            terms: 0,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(token, _)| token)
    }

    fn peek_name(&self) -> Option<&str> {
        match self.peek() {
            Some(Token::Name(name)) => Some(name),
            _ => None,
        }
    }

    fn next(&mut self) -> Option<Spanned> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.end, |(_, position)| *position)
    }

    fn error_at(&self, position: usize, message: String) -> ParseError {
        ParseError {
            position: position + 1,
            message,
        }
    }

    fn expect_any(&mut self, what: &str) -> Result<Spanned, ParseError> {
        let position = self.position();
        self.next().ok_or_else(|| {
            self.error_at(
                position,
                format!("expected {what}, found the end of the expression"),
            )
        })
    }

    fn expect(&mut self, wanted: Token, what: &str) -> Result<(), ParseError> {
        let (token, position) = self.expect_any(what)?;
        if token == wanted {
            Ok(())
        } else {
            Err(self.error_at(
                position,
                format!("expected {what}, found {}", token.describe()),
            ))
        }
    }

    fn finish(&self) -> Result<(), ParseError> {
        match self.tokens.get(self.at) {
            None => Ok(()),
            Some((token, position)) => Err(self.error_at(
                *position,
                format!(
                    "unexpected {} after a complete expression",
                    token.describe()
                ),
            )),
        }
    }

    /// Runs `parse` one level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            let position = self.position();
            return Err(self.error_at(
                position,
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.peek_name() == Some("or") {
            self.next();
            let right = self.and()?;
            left = left.or(right);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while self.peek_name() == Some("and") {
            self.next();
            let right = self.unary()?;
            left = left.and(right);
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek_name() == Some("not") {
            return self.negated();
        }
        self.compare()
    }

    /// `not` and its operand: a group, a lambda or another `not`, which binds tighter than any
    /// comparison after it.
    fn negated(&mut self) -> Result<Expr, ParseError> {
        let (_, not_at) = self.next().expect("peeked `not`");
        let operand_at = self.position();
        let operand = if self.peek_name() == Some("not") {
            self.nested(Self::negated)?
        } else {
            match self.nested(Self::primary)? {
                Primary::Boolean(expr) => expr,
                Primary::Operand(operand) => {
                    let (what, shown) = match &operand {
                        Operand::Member(member) => ("the member", member.path()),
                        Operand::Literal(literal) => ("the literal", literal.to_string()),
                    };
                    return Err(self.error_at(
                        operand_at,
                        format!(
                            "`not` applies to a boolean, and {what} `{shown}` is not one: `not` binds \
                             tighter than a comparison in OData, so negate a comparison in parentheses, \
                             as in `not ({shown} eq ...)`"
                        ),
                    ));
                }
            }
        };
        if let Some(op) = self.peek_name().filter(|name| COMPARISONS.contains(name)) {
            let op = op.to_owned();
            let at = self.position();
            return Err(self.error_at(
                at,
                format!(
                    "`{op}` after `not (...)` would compare the negation itself (`not` binds tighter \
                     than `{op}`; the `not` is at position {}); put the whole comparison in the \
                     parentheses",
                    not_at + 1
                ),
            ));
        }
        Ok(operand.negate())
    }

    fn compare(&mut self) -> Result<Expr, ParseError> {
        let start = self.position();
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.error_at(
                start,
                format!("the expression has more than {MAX_TERMS} comparisons"),
            ));
        }
        let left = self.primary()?;
        let op = match self.peek_name() {
            Some("eq") => Some(CompareOp::Eq),
            Some("ne") => Some(CompareOp::Ne),
            Some("gt") => Some(CompareOp::Gt),
            Some("ge") => Some(CompareOp::Ge),
            Some("lt") => Some(CompareOp::Lt),
            Some("le") => Some(CompareOp::Le),
            _ => None,
        };
        match (left, op) {
            (Primary::Operand(left), Some(op)) => {
                self.next();
                let right_at = self.position();
                match self.primary()? {
                    Primary::Operand(right) => Ok(Expr::Compare { left, op, right }),
                    Primary::Boolean(_) => Err(self.error_at(
                        right_at,
                        format!(
                            "the right side of `{}` must be a member or a literal",
                            op.keyword()
                        ),
                    )),
                }
            }
            (Primary::Boolean(expr), None) => Ok(expr),
            (Primary::Boolean(_), Some(op)) => Err(self.error_at(
                start,
                format!(
                    "the left side of `{}` must be a member or a literal",
                    op.keyword()
                ),
            )),
            (Primary::Operand(_), None) => {
                let position = self.position();
                let found = self
                    .peek()
                    .map_or_else(|| "the end of the expression".to_owned(), Token::describe);
                Err(self.error_at(
                    position,
                    format!(
                        "expected a comparison operator (eq, ne, gt, ge, lt, le), found {found}"
                    ),
                ))
            }
        }
    }

    fn primary(&mut self) -> Result<Primary, ParseError> {
        let (token, position) = self.expect_any("a member, a literal or `(`")?;
        let literal = match token {
            Token::Open => {
                let inner = self.nested(Self::or)?;
                self.expect(Token::Close, "`)`")?;
                return Ok(Primary::Boolean(inner));
            }
            Token::String(text) => Literal::String(text),
            Token::Number(text) => Literal::Number(text),
            Token::DateTime(text) => Literal::DateTime(text),
            Token::Date(text) => Literal::Date(text),
            Token::Guid(text) => Literal::Guid(text),
            Token::Name(name) => match name.as_str() {
                "true" => Literal::Boolean(true),
                "false" => Literal::Boolean(false),
                "null" => Literal::Null,
                _ if KEYWORDS.contains(&name.as_str()) || name == "all" => {
                    return Err(self.error_at(
                        position,
                        format!("expected a member or a literal, found the keyword `{name}`"),
                    ));
                }
                _ => {
                    self.at -= 1;
                    return self.member_or_lambda();
                }
            },
            other => {
                return Err(self.error_at(
                    position,
                    format!(
                        "expected a member, a literal or `(`, found {}",
                        other.describe()
                    ),
                ));
            }
        };
        Ok(Primary::Operand(Operand::Literal(literal)))
    }

    fn member_or_lambda(&mut self) -> Result<Primary, ParseError> {
        let position = self.position();
        let mut segments = Vec::new();
        loop {
            let (token, at) = self.expect_any("a member name")?;
            let Token::Name(name) = token else {
                return Err(self.error_at(
                    at,
                    format!("expected a member name, found {}", token.describe()),
                ));
            };
            if matches!(name.as_str(), "any" | "all")
                && !segments.is_empty()
                && self.peek() == Some(&Token::Open)
            {
                let kind = if name == "any" {
                    LambdaKind::Any
                } else {
                    LambdaKind::All
                };
                return self
                    .lambda(Member { segments, position }, kind)
                    .map(Primary::Boolean);
            }
            if KEYWORDS.contains(&name.as_str()) {
                return Err(self.error_at(
                    at,
                    format!("expected a member name, found the keyword `{name}`"),
                ));
            }
            segments.push(name);
            if self.peek() == Some(&Token::Slash) {
                self.next();
            } else {
                break;
            }
        }
        Ok(Primary::Operand(Operand::Member(Member {
            segments,
            position,
        })))
    }

    fn lambda(&mut self, collection: Member, kind: LambdaKind) -> Result<Expr, ParseError> {
        self.expect(Token::Open, "`(`")?;
        let (token, at) = self.expect_any("a range variable")?;
        let Token::Name(variable) = token else {
            return Err(self.error_at(
                at,
                format!("expected a range variable, found {}", token.describe()),
            ));
        };
        self.expect(Token::Colon, "`:` after the range variable")?;
        let predicate = self.nested(Self::or)?;
        self.expect(Token::Close, "`)` to close the lambda")?;
        Ok(Expr::Lambda {
            collection,
            kind,
            variable,
            predicate: Box::new(predicate),
        })
    }

    fn member(&mut self) -> Result<Member, ParseError> {
        let at = self.position();
        match self.member_or_lambda()? {
            Primary::Operand(Operand::Member(member)) => Ok(member),
            _ => Err(self.error_at(at, "expected a member".into())),
        }
    }
}

enum Primary {
    Operand(Operand),
    Boolean(Expr),
}
