//! The grammar in detail: which texts are which literals (date-times above all, which the
//! incremental sync writes), which operators and keywords are read, where errors are, and how
//! deep a filter may nest. Written to catch a changed parser (`cargo mutants -p referrals-odata`).

use referrals_odata::{
    CompareOp, Expr, LambdaKind, Literal, Member, Operand, ParseError, parse_filter, parse_orderby,
    parse_select,
};

/// The literal of `a eq <text>`, or the parse error.
fn literal(text: &str) -> Result<Literal, ParseError> {
    match parse_filter(&format!("a eq {text}"))? {
        Expr::Compare {
            right: Operand::Literal(literal),
            ..
        } => Ok(literal),
        other => panic!("`a eq {text}` is not a comparison with a literal: {other:?}"),
    }
}

fn error(text: &str) -> ParseError {
    parse_filter(text).expect_err(text)
}

#[test]
fn date_times_of_every_documented_form_are_one_literal() {
    for text in [
        "2020-10-30T21:03Z",
        "2020-10-30T21:03:00Z",
        "2018-10-30T21:03:42.4579542Z",
        "2020-10-30T21:03:00.0000000Z",
        "2020-10-30T21:03:00.5Z",
        "2020-10-30T21:03:00+01:00",
        "2020-10-30T21:03:00-05:30",
        "2020-10-30T21:03+01:00",
        "2020-10-30T21:03:00.123+14:00",
    ] {
        assert_eq!(literal(text), Ok(Literal::DateTime(text.into())), "{text}");
    }
    assert_eq!(
        literal("2020-10-30"),
        Ok(Literal::Date("2020-10-30".into()))
    );
}

#[test]
fn almost_date_times_are_not_date_times() {
    for text in [
        "2020-10-3",
        "2020-1-30",
        "202-10-30",
        "2020-10-30T21Z",
        "2020-10-30T2:03Z",
        "2020-10-30T21:0Z",
        "2020-10-30T21:3Z",
        "2020-10-30T21:03:0Z",
        "2020-10-30T21:03:00.Z",
        "2020-10-30T21:03:00",
        "2020-10-30T21:03",
        "2020-10-30T21:03:00+0100",
        "2020-10-30T21:03:00+01:0",
        "2020-10-30T21:03:00+1:00",
        "2020-10-30T21:03:00+01-00",
        "2020-10-30T21:03:00*01:00",
        "2020-10-30T2103Z",
        "2020-1030",
        "202010-30",
        "2020-x0-30",
        "2020-10-x0",
        "x020-10-30",
        "20x0-10-30",
        "2020-10-30Tx1:03Z",
        "2020-10-30T21:x3Z",
        "2020-10-30T21:03:x0Z",
        "2020-10-30T21:03:00+x1:00",
        "2020-10-30T21:03:00+01:x0",
    ] {
        let read = literal(text);
        assert!(
            !matches!(&read, Ok(Literal::DateTime(found) | Literal::Date(found)) if found == text),
            "`{text}` was read as {read:?}"
        );
    }
}

#[test]
fn date_times_end_where_they_end() {
    // A date-time followed by more: the comparison takes the date-time, the rest follows.
    let expr = parse_filter("a ge 2020-10-30T21:03:00Z and b le 2021-01-01").unwrap();
    assert_eq!(
        expr.to_string(),
        "a ge 2020-10-30T21:03:00Z and b le 2021-01-01"
    );
    // The sync's filters, as it writes them.
    let expr = parse_filter(
        "updatedDateTime ge 2020-10-30T21:03:00.457954200Z and updatedDateTime le 2026-11-22T06:00:00Z",
    )
    .unwrap();
    let Expr::And(low, high) = expr else {
        panic!("not an `and`")
    };
    assert!(matches!(
        *low,
        Expr::Compare { op: CompareOp::Ge, right: Operand::Literal(Literal::DateTime(ref text)), .. }
            if text == "2020-10-30T21:03:00.457954200Z"
    ));
    assert!(matches!(
        *high,
        Expr::Compare { op: CompareOp::Le, right: Operand::Literal(Literal::DateTime(ref text)), .. }
            if text == "2026-11-22T06:00:00Z"
    ));
}

#[test]
fn numbers_of_every_form_are_one_literal() {
    for text in [
        "0", "12", "-3", "1.5", "-0.25", "1e5", "1E5", "1e+5", "1e-5", "2.5e10", "-7E-2",
    ] {
        assert_eq!(literal(text), Ok(Literal::Number(text.into())), "{text}");
    }
}

#[test]
fn malformed_numbers_are_errors_at_their_start() {
    for (text, position) in [
        ("a eq 12abc", 6),
        ("a eq 12_", 6),
        ("a eq 1.", 6),
        ("a eq 1.x", 6),
        ("a eq 1e", 6),
        ("a eq 1e+", 6),
        ("a eq -1e-", 6),
        ("a eq 12e5x", 6),
        ("a eq 65edc0b5-3485-41b7-a17e-dfa9ef4706e2_x", 6),
    ] {
        let found = error(text);
        assert_eq!(
            (found.position, found.message.as_str()),
            (position, "a malformed number"),
            "{text}"
        );
    }
    // A minus sign that starts no number is not a number at all.
    let found = error("a eq -x");
    assert_eq!(found.position, 6);
    assert_eq!(found.message, "unexpected character `-`");
}

#[test]
fn guids_end_where_a_name_could_not_go_on() {
    let guid = "65edc0b5-3485-41b7-a17e-dfa9ef4706e2";
    assert_eq!(literal(guid), Ok(Literal::Guid(guid.into())));
    assert_eq!(
        parse_filter(&format!("(a eq {guid})")).unwrap().to_string(),
        format!("a eq {guid}")
    );
    // Too short, or followed by a letter: not a GUID.
    assert!(!matches!(
        literal("65edc0b5-3485-41b7-a17e-dfa9ef4706e"),
        Ok(Literal::Guid(_))
    ));
    assert!(!matches!(
        literal(&format!("{guid}a")),
        Ok(Literal::Guid(_))
    ));
}

#[test]
fn names_start_with_a_letter_underscore_at_or_dollar() {
    for name in ["_x", "@odata.count", "$it", "x1", "a.b"] {
        let expr = parse_filter(&format!("{name} eq 1")).unwrap();
        let Expr::Compare {
            left: Operand::Member(member),
            ..
        } = expr
        else {
            panic!("{name}: not a comparison of a member")
        };
        assert_eq!(member.path(), name);
    }
    let found = error("a eq #");
    assert_eq!(
        (found.position, found.message.as_str()),
        (6, "unexpected character `#`")
    );
}

#[test]
fn every_comparison_operator_is_read() {
    for (keyword, op) in [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("gt", CompareOp::Gt),
        ("ge", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ] {
        let expr = parse_filter(&format!("a {keyword} 1")).unwrap();
        assert!(
            matches!(expr, Expr::Compare { op: found, .. } if found == op),
            "{keyword}"
        );
        assert_eq!(op.keyword(), keyword);
    }
}

#[test]
fn booleans_and_null_are_literals() {
    assert_eq!(literal("true"), Ok(Literal::Boolean(true)));
    assert_eq!(literal("false"), Ok(Literal::Boolean(false)));
    assert_eq!(literal("null"), Ok(Literal::Null));
    assert_eq!(literal("'x'"), Ok(Literal::String("x".into())));
}

#[test]
fn keywords_are_not_members() {
    for keyword in ["and", "or", "not", "any", "all", "eq"] {
        let found = error(&format!("a eq {keyword}"));
        assert!(
            found.message.contains(&format!("the keyword `{keyword}`"))
                || found.message.contains("expected a member"),
            "{keyword}: {found}"
        );
        assert_eq!(found.position, 6, "{keyword}: {found}");
    }
    let found = error("any eq 1");
    assert_eq!(
        found.message,
        "expected a member or a literal, found the keyword `any`"
    );
    let found = error("team/any eq 1");
    assert_eq!(
        found.message,
        "expected a member name, found the keyword `any`"
    );
    assert_eq!(found.position, 6);
    let found = error("all(t:t/x eq 1)");
    assert_eq!(
        found.message,
        "expected a member or a literal, found the keyword `all`"
    );
}

#[test]
fn lambdas_need_a_collection_and_parentheses() {
    let expr = parse_filter("team/all(t:t/email ne 'x')").unwrap();
    assert!(matches!(
        expr,
        Expr::Lambda { kind: LambdaKind::All, ref variable, .. } if variable == "t"
    ));
    let found = error("team/any t:t/email eq 'x'");
    assert_eq!(
        found.message,
        "expected a member name, found the keyword `any`"
    );
}

#[test]
fn error_messages_describe_what_they_found() {
    for (text, message) in [
        (
            "a eq 1 'x'",
            "unexpected the string 'x' after a complete expression",
        ),
        ("a eq 1 )", "unexpected `)` after a complete expression"),
        ("a eq 1 5", "unexpected `5` after a complete expression"),
        ("a eq 1 /", "unexpected `/` after a complete expression"),
        ("a eq 1 :", "unexpected `:` after a complete expression"),
        ("a eq 1 ,", "unexpected `,` after a complete expression"),
        ("a eq 1 b", "unexpected `b` after a complete expression"),
        ("a eq ,", "expected a member, a literal or `(`, found `,`"),
        ("(a eq 1", "expected `)`, found the end of the expression"),
    ] {
        assert_eq!(error(text).message, message, "{text}");
    }
}

#[test]
fn members_are_equal_when_their_paths_are() {
    assert_eq!(Member::new("a/b"), Member::new("a/b"));
    assert_ne!(Member::new("a/b"), Member::new("a/c"));
    assert_ne!(Member::new("a"), Member::new("a/b"));
}

#[test]
fn siblings_do_not_nest() {
    // A hundred groups side by side are a hundred levels of nothing: the depth goes back down
    // after each.
    let text = vec!["(a eq 1)"; 100].join(" and ");
    assert!(parse_filter(&text).is_ok());
    let text = vec!["not (a eq 1)"; 100].join(" or ");
    assert!(parse_filter(&text).is_ok());
    let text = vec!["team/any(t:t/x eq 1)"; 100].join(" and ");
    assert!(parse_filter(&text).is_ok());
    // Nested, the limit holds.
    let nested = format!("{}a eq 1{}", "(".repeat(65), ")".repeat(65));
    assert!(error(&nested).message.contains("nests more than 64"));
    let fine = format!("{}a eq 1{}", "(".repeat(63), ")".repeat(63));
    assert!(parse_filter(&fine).is_ok());
}

#[test]
fn not_binds_tighter_than_a_comparison() {
    let found = error("not status eq 'New'");
    assert_eq!(found.position, 5);
    assert!(found.message.contains("`not` binds tighter"), "{found}");
    let found = error("not (status eq 'New') eq true");
    assert_eq!(found.position, 23);
    assert!(
        found.message.contains("the `not` is at position 1"),
        "{found}"
    );
    let found = error("not 'x'");
    assert!(found.message.contains("the literal `'x'`"), "{found}");
    let expr = parse_filter("not not (a eq 1)").unwrap();
    assert_eq!(expr.to_string(), "not not (a eq 1)");
    let expr = parse_filter("not team/any(t:t/x eq 1)").unwrap();
    assert_eq!(expr.to_string(), "not team/any(t:t/x eq 1)");
}

#[test]
fn orderby_reads_asc_desc_and_the_default() {
    let items = parse_orderby("a asc, b desc, c").unwrap();
    let read: Vec<(String, bool)> = items
        .iter()
        .map(|item| (item.member.path(), item.descending))
        .collect();
    assert_eq!(
        read,
        [("a".into(), false), ("b".into(), true), ("c".into(), false)]
    );
    assert!(parse_orderby("a up").is_err());
    assert_eq!(parse_select("a, b").unwrap().len(), 2);
}
