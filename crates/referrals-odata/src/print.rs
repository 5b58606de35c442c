//! Writing expressions back as text that parses to the same expression.

use std::fmt;

use crate::{Expr, LambdaKind, Literal, Operand, OrderItem};

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Compare { left, op, right } => write!(f, "{left} {} {right}", op.keyword()),
            // `and` binds tighter than `or`; the right side is grouped when it is of the same
            // kind, so that the text parses back to the same tree.
            Expr::And(left, right) => {
                group(f, left, matches!(**left, Expr::Or(..)))?;
                f.write_str(" and ")?;
                group(f, right, matches!(**right, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Or(left, right) => {
                group(f, left, false)?;
                f.write_str(" or ")?;
                group(f, right, matches!(**right, Expr::Or(..)))
            }
            // `not` binds tighter than a comparison in OData: its operand is grouped unless it
            // is a lambda or another `not`.
            Expr::Not(inner) => {
                f.write_str("not ")?;
                group(
                    f,
                    inner,
                    !matches!(**inner, Expr::Lambda { .. } | Expr::Not(..)),
                )
            }
            Expr::Lambda {
                collection,
                kind,
                variable,
                predicate,
            } => {
                let kind = match kind {
                    LambdaKind::Any => "any",
                    LambdaKind::All => "all",
                };
                write!(f, "{}/{kind}({variable}:{predicate})", collection.path())
            }
        }
    }
}

fn group(f: &mut fmt::Formatter<'_>, expr: &Expr, parenthesize: bool) -> fmt::Result {
    if parenthesize {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Member(member) => f.write_str(&member.path()),
            Operand::Literal(literal) => literal.fmt(f),
        }
    }
}

pub(crate) fn literal(literal: &Literal, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match literal {
        Literal::String(text) => f.write_str(&crate::quote(text)),
        Literal::Number(text)
        | Literal::DateTime(text)
        | Literal::Date(text)
        | Literal::Guid(text) => f.write_str(text),
        Literal::Boolean(value) => write!(f, "{value}"),
        Literal::Null => f.write_str("null"),
    }
}

impl fmt::Display for OrderItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.member.path(),
            if self.descending { "desc" } else { "asc" }
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::{CompareOp, Expr, Literal, ParseError, parse_filter, parse_orderby, parse_select};

    #[test]
    fn the_documented_filters_parse_and_print_back() {
        for text in [
            "engagementId eq '65edc0b5-3485-41b7-a17e-dfa9ef4706e2'",
            "status eq 'New' and qualification eq 'SalesQualified'",
            "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
            "(type eq 'Shared' and direction eq 'Incoming')",
            "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and team/any(t:t/email eq 'r2d2@contoso.com')",
            "updatedDateTime ge 2020-10-30T00:00:00Z or not (status eq 'Closed')",
        ] {
            let expr = parse_filter(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            let printed = expr.to_string();
            assert_eq!(
                parse_filter(&printed).unwrap(),
                expr,
                "{text} printed as {printed}"
            );
        }
    }

    #[test]
    fn quotes_are_doubled() {
        let expr = Expr::compare(
            "customerProfile/name",
            CompareOp::Eq,
            Literal::String("O'Neil & Sons".into()),
        );
        assert_eq!(expr.to_string(), "customerProfile/name eq 'O''Neil & Sons'");
        let text = "customerProfile/name eq 'x'' or 1 eq 1 or ''y'";
        let Expr::Compare { right, .. } = parse_filter(text).unwrap() else {
            panic!()
        };
        assert_eq!(right.to_string(), "'x'' or 1 eq 1 or ''y'");
    }

    #[test]
    fn grouping_keeps_the_tree() {
        let a = Expr::compare("a", CompareOp::Eq, Literal::Number("1".into()));
        let b = Expr::compare("b", CompareOp::Eq, Literal::Number("2".into()));
        let c = Expr::compare("c", CompareOp::Eq, Literal::Number("3".into()));
        let tree = a.clone().and(b.clone().or(c.clone()));
        assert_eq!(tree.to_string(), "a eq 1 and (b eq 2 or c eq 3)");
        assert_eq!(parse_filter(&tree.to_string()).unwrap(), tree);
        let tree = a.or(b).negate().and(c);
        assert_eq!(tree.to_string(), "not (a eq 1 or b eq 2) and c eq 3");
        assert_eq!(parse_filter(&tree.to_string()).unwrap(), tree);
    }

    #[test]
    fn errors_name_the_position() {
        let cases: [(&str, usize, &str); 7] = [
            ("status eq", 10, "expected a member, a literal"),
            ("status eq 'New", 11, "never closed"),
            ("status equals 'New'", 8, "comparison operator"),
            ("(status eq 'New'", 17, "expected `)`"),
            ("status eq 'New' and", 20, "found the end"),
            ("status eq 'New' 'x'", 17, "after a complete expression"),
            ("status eq #", 11, "unexpected character `#`"),
        ];
        for (text, position, message) in cases {
            let error: ParseError = parse_filter(text).unwrap_err();
            assert_eq!(error.position, position, "{text}: {error}");
            assert!(error.message.contains(message), "{text}: {error}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}a eq 1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(
            parse_filter(&deep)
                .unwrap_err()
                .message
                .contains("nests more than 64")
        );
        let nots = format!("{}a eq 1", "not ".repeat(100_000));
        assert!(
            parse_filter(&nots)
                .unwrap_err()
                .message
                .contains("nests more than 64")
        );
        let fine = format!("{}a eq 1{}", "(".repeat(60), ")".repeat(60));
        assert!(parse_filter(&fine).is_ok());
        let long = vec!["a eq 1"; 50_000].join(" and ");
        assert!(
            parse_filter(&long)
                .unwrap_err()
                .message
                .contains("more than 256 comparisons")
        );
        assert!(parse_filter(&vec!["a eq 1"; 256].join(" or ")).is_ok());
    }

    #[test]
    fn literals_of_every_kind() {
        let text = "a eq 12.5 and b eq -3 and c eq true and d eq null and e eq 2020-10-30 and f eq 65edc0b5-3485-41b7-a17e-dfa9ef4706e2 and g lt 2018-10-30T21:03:42.4579542Z";
        assert_eq!(parse_filter(text).unwrap().to_string(), text);
    }

    #[test]
    fn orderby_and_select() {
        let items = parse_orderby("createdDateTime desc, updatedDateTime").unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[0].descending && !items[1].descending);
        assert_eq!(items[1].to_string(), "updatedDateTime asc");
        let select = parse_select("id,status, customerProfile").unwrap();
        assert_eq!(
            select
                .iter()
                .map(|item| item.name.as_str())
                .collect::<Vec<_>>(),
            ["id", "status", "customerProfile"]
        );
        assert_eq!(parse_select("id,,status").unwrap_err().position, 4);
    }

    proptest! {
        /// Whatever a string holds, it comes back from the parser as the same literal.
        #[test]
        fn any_string_is_one_literal(text in "\\PC*|[' ()&+#%=]*") {
            let expr = Expr::compare("customerProfile/name", CompareOp::Eq, Literal::String(text.clone()))
                .and(Expr::compare("status", CompareOp::Ne, Literal::String(text.clone())));
            let parsed = parse_filter(&expr.to_string()).unwrap();
            prop_assert_eq!(parsed, expr);
        }
    }
}
