use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn path(attribute: &str) -> AttrPath {
    AttrPath::new(attribute)
}

fn sub_path(attribute: &str, sub_attribute: &str) -> AttrPath {
    AttrPath {
        schema: None,
        attribute: attribute.to_owned(),
        sub_attribute: Some(sub_attribute.to_owned()),
    }
}

fn string_compare(path: AttrPath, op: CompareOp, value: &str) -> Filter {
    Filter::Compare {
        path,
        op,
        value: CompValue::String(value.to_owned()),
    }
}

fn parse(input: &str) -> Filter {
    match parse_filter(input) {
        Ok(filter) => filter,
        Err(error) => panic!("filter {input:?} failed to parse: {error}"),
    }
}

fn parse_error(input: &str) -> ScimError {
    match parse_filter(input) {
        Ok(filter) => panic!("filter {input:?} parsed as {filter:?}, expected an error"),
        Err(error) => error,
    }
}

fn assert_invalid_filter(input: &str) -> String {
    let error = parse_error(input);
    assert_eq!(error.status, 400, "filter {input:?}");
    assert_eq!(
        error.scim_type,
        Some(ScimType::InvalidFilter),
        "filter {input:?}"
    );
    error.detail
}

#[test]
fn parse_simple_equality() {
    assert_eq!(
        parse(r#"userName eq "bjensen""#),
        string_compare(path("userName"), CompareOp::Eq, "bjensen")
    );
}

#[test]
fn parse_sub_attribute_with_apostrophe() {
    assert_eq!(
        parse(r#"name.familyName co "O'Malley""#),
        string_compare(sub_path("name", "familyName"), CompareOp::Co, "O'Malley")
    );
}

#[test]
fn parse_every_comparison_operator() {
    let operators = [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("co", CompareOp::Co),
        ("sw", CompareOp::Sw),
        ("ew", CompareOp::Ew),
        ("gt", CompareOp::Gt),
        ("ge", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ];
    for (name, op) in operators {
        let filter = parse(&format!(r#"title {name} "x""#));
        assert_eq!(
            filter,
            string_compare(path("title"), op, "x"),
            "operator {name}"
        );
    }
}

#[test]
fn parse_operators_and_keywords_ignore_case() {
    let filter = parse(r#"userName EQ "a" AND title PR OR NOT (active Eq TRUE)"#);

    let expected = Filter::Or(
        Box::new(Filter::And(
            Box::new(string_compare(path("userName"), CompareOp::Eq, "a")),
            Box::new(Filter::Present(path("title"))),
        )),
        Box::new(Filter::Not(Box::new(Filter::Compare {
            path: path("active"),
            op: CompareOp::Eq,
            value: CompValue::Bool(true),
        }))),
    );
    assert_eq!(filter, expected);
}

#[test]
fn parse_keeps_attribute_spelling() {
    let Filter::Compare { path: parsed, .. } = parse(r#"DisplayName eq "Sales""#) else {
        panic!("expected a comparison");
    };

    assert_eq!(parsed.attribute, "DisplayName");
    assert!(parsed.matches_name("displayname", None));
    assert_eq!(parsed.normalized(), "displayname");
}

#[test]
fn parse_presence_and_equality() {
    assert_eq!(
        parse(r#"title pr and userType eq "Employee""#),
        Filter::And(
            Box::new(Filter::Present(path("title"))),
            Box::new(string_compare(path("userType"), CompareOp::Eq, "Employee")),
        )
    );
}

#[test]
fn parse_and_binds_tighter_than_or() {
    let filter = parse(r#"a eq "1" or b eq "2" and c eq "3""#);

    let expected = Filter::Or(
        Box::new(string_compare(path("a"), CompareOp::Eq, "1")),
        Box::new(Filter::And(
            Box::new(string_compare(path("b"), CompareOp::Eq, "2")),
            Box::new(string_compare(path("c"), CompareOp::Eq, "3")),
        )),
    );
    assert_eq!(filter, expected);
}

#[test]
fn parse_parentheses_override_precedence() {
    let filter = parse(r#"(a eq "1" or b eq "2") and c eq "3""#);

    let expected = Filter::And(
        Box::new(Filter::Or(
            Box::new(string_compare(path("a"), CompareOp::Eq, "1")),
            Box::new(string_compare(path("b"), CompareOp::Eq, "2")),
        )),
        Box::new(string_compare(path("c"), CompareOp::Eq, "3")),
    );
    assert_eq!(filter, expected);
}

#[test]
fn parse_and_chain_is_left_associative() {
    let filter = parse("a pr and b pr and c pr");

    let expected = Filter::And(
        Box::new(Filter::And(
            Box::new(Filter::Present(path("a"))),
            Box::new(Filter::Present(path("b"))),
        )),
        Box::new(Filter::Present(path("c"))),
    );
    assert_eq!(filter, expected);
}

#[test]
fn parse_not_group() {
    assert_eq!(
        parse(r#"not (userName eq "x")"#),
        Filter::Not(Box::new(string_compare(
            path("userName"),
            CompareOp::Eq,
            "x"
        )))
    );
    assert_eq!(
        parse(r#"not(userName eq "x")"#),
        Filter::Not(Box::new(string_compare(
            path("userName"),
            CompareOp::Eq,
            "x"
        )))
    );
}

#[test]
fn parse_attribute_named_not() {
    assert_eq!(parse("not pr"), Filter::Present(path("not")));
}

#[test]
fn parse_value_path_with_logical_filter() {
    let filter = parse(r#"emails[type eq "work" and value co "@example.com"]"#);

    let expected = Filter::ValuePath {
        path: path("emails"),
        filter: Box::new(Filter::And(
            Box::new(string_compare(path("type"), CompareOp::Eq, "work")),
            Box::new(string_compare(path("value"), CompareOp::Co, "@example.com")),
        )),
    };
    assert_eq!(filter, expected);
}

#[test]
fn parse_value_path_combined_with_other_terms() {
    let filter = parse(r#"userType eq "Employee" and emails[type eq "work"]"#);

    let Filter::And(_, right) = filter else {
        panic!("expected and");
    };
    assert!(matches!(*right, Filter::ValuePath { .. }));
}

#[test]
fn parse_value_path_followed_by_sub_attribute() {
    let filter = parse(r#"emails[type eq "work"].value eq "user@example.test""#);

    let expected = Filter::ValuePath {
        path: path("emails"),
        filter: Box::new(Filter::And(
            Box::new(string_compare(path("type"), CompareOp::Eq, "work")),
            Box::new(string_compare(
                path("value"),
                CompareOp::Eq,
                "user@example.test",
            )),
        )),
    };
    assert_eq!(filter, expected);
}

#[test]
fn parse_date_comparison() {
    assert_eq!(
        parse(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#),
        string_compare(
            sub_path("meta", "lastModified"),
            CompareOp::Gt,
            "2011-05-13T04:42:34Z"
        )
    );
}

#[test]
fn parse_urn_prefixed_core_attribute() {
    let Filter::Compare { path: parsed, .. } =
        parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#)
    else {
        panic!("expected a comparison");
    };

    assert_eq!(parsed.schema.as_deref(), Some(USER_SCHEMA));
    assert_eq!(parsed.attribute, "userName");
    assert_eq!(parsed.sub_attribute, None);
}

#[test]
fn parse_urn_prefixed_extension_sub_attribute() {
    let input = r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#;

    let Filter::Compare { path: parsed, .. } = parse(input) else {
        panic!("expected a comparison");
    };

    assert!(parsed.schema_is(ENTERPRISE_USER_SCHEMA));
    assert_eq!(parsed.attribute, "manager");
    assert_eq!(parsed.sub_attribute.as_deref(), Some("value"));
}

#[test]
fn parse_unknown_urn_splits_at_last_colon() {
    let Filter::Present(parsed) =
        parse("urn:example:params:scim:schemas:extension:custom:2.0:Thing:badge.number pr")
    else {
        panic!("expected presence");
    };

    assert_eq!(
        parsed.schema.as_deref(),
        Some("urn:example:params:scim:schemas:extension:custom:2.0:Thing")
    );
    assert_eq!(parsed.attribute, "badge");
    assert_eq!(parsed.sub_attribute.as_deref(), Some("number"));
}

#[test]
fn parse_literals() {
    let cases = [
        ("active eq true", CompValue::Bool(true)),
        ("active eq False", CompValue::Bool(false)),
        ("manager eq null", CompValue::Null),
        ("age gt 42", CompValue::Number(42.into())),
        ("age gt -1", CompValue::Number((-1).into())),
    ];
    for (input, expected) in cases {
        let Filter::Compare { value, .. } = parse(input) else {
            panic!("expected a comparison for {input:?}");
        };
        assert_eq!(value, expected, "filter {input:?}");
    }

    let Filter::Compare {
        value: CompValue::Number(number),
        ..
    } = parse("score ge 1.5e2")
    else {
        panic!("expected a number");
    };
    assert_eq!(number.as_f64(), Some(150.0));
}

#[test]
fn parse_string_escapes() {
    let Filter::Compare { value, .. } = parse(r#"displayName eq "a\"b\\c\/d\n\u00e9\ud83d\ude00""#)
    else {
        panic!("expected a comparison");
    };

    assert_eq!(value, CompValue::String("a\"b\\c/d\né😀".to_owned()));
}

#[test]
fn parse_tolerates_extra_whitespace() {
    assert_eq!(
        parse("  userName   eq\t\"bjensen\"  "),
        string_compare(path("userName"), CompareOp::Eq, "bjensen")
    );
}

#[test]
fn reject_unterminated_string() {
    let detail = assert_invalid_filter(r#"userName eq "bjensen"#);

    assert!(detail.contains("unterminated string"), "{detail}");
    assert!(detail.contains("position 13"), "{detail}");
}

#[test]
fn reject_unknown_operator() {
    let detail = assert_invalid_filter(r#"userName like "b%""#);

    assert!(detail.contains("unknown operator 'like'"), "{detail}");
    assert!(detail.contains("position 10"), "{detail}");
}

#[test]
fn reject_trailing_garbage() {
    let detail = assert_invalid_filter(r#"userName eq "a" extra"#);

    assert!(detail.contains("position 17"), "{detail}");
}

#[test]
fn reject_malformed_filters() {
    let inputs = [
        "",
        "   ",
        "userName",
        "userName eq",
        r#"userName eq "a" and"#,
        r#"(userName eq "a""#,
        r#"userName eq "a")"#,
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"]]"#,
        r#"emails[type eq "work"] eq "x""#,
        r#"emails[addresses[type eq "x"]]"#,
        r#"name.familyName[type eq "x"]"#,
        r#"userName eq bjensen"#,
        r#"userName eq 'bjensen'"#,
        r#"userName eq "\x""#,
        r#"userName eq "\ud83d""#,
        r#"userName eq "\u12""#,
        "1abc pr",
        "a.b.c pr",
        "user-name$ pr",
        ":userName pr",
        "urn: pr",
        r#"not ("#,
        r#"() "#,
        r#"and pr and"#,
        "score gt 1e999",
    ];
    for input in inputs {
        assert_invalid_filter(input);
    }
}

#[test]
fn reject_too_deep_nesting() {
    let depth = MAX_FILTER_DEPTH + 1;
    let input = format!("{}userName pr{}", "(".repeat(depth), ")".repeat(depth));

    let detail = assert_invalid_filter(&input);

    assert!(detail.contains("nested deeper"), "{detail}");
}

#[test]
fn accept_nesting_at_limit() {
    let input = format!(
        "{}userName pr{}",
        "(".repeat(MAX_FILTER_DEPTH),
        ")".repeat(MAX_FILTER_DEPTH)
    );

    assert_eq!(parse(&input), Filter::Present(path("userName")));
}

#[test]
fn reject_deep_not_nesting() {
    let depth = MAX_FILTER_DEPTH + 1;
    let input = format!("{}userName pr{}", "not (".repeat(depth), ")".repeat(depth));

    assert_invalid_filter(&input);
}

#[test]
fn reject_overlong_input() {
    let input = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LENGTH));

    let detail = assert_invalid_filter(&input);

    assert!(detail.contains("longer than"), "{detail}");
}

#[test]
fn reject_huge_parenthesis_run_without_overflow() {
    let input = "(".repeat(100_000);

    assert_invalid_filter(&input);
}

#[test]
fn longest_and_chain_parses_and_evaluates() {
    let term = "a pr and ";
    let terms = (MAX_FILTER_LENGTH - 4) / term.len();
    let input = format!("{}a pr", term.repeat(terms));

    let filter = parse(&input);

    assert!(filter.matches(&json!({"a": "x"})));
    assert!(!filter.matches(&json!({"b": "x"})));
}

#[test]
fn attr_path_parse_rejects_invalid_with_invalid_path() {
    let error = AttrPath::parse("bad name").err();

    assert_eq!(
        error.and_then(|error| error.scim_type),
        Some(ScimType::InvalidPath)
    );
}

#[test]
fn attr_path_eq_ignore_case() {
    let written =
        AttrPath::parse("URN:ietf:params:scim:schemas:extension:enterprise:2.0:User:Manager.Value");
    let canonical =
        AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value");

    let (Ok(written), Ok(canonical)) = (written, canonical) else {
        panic!("both paths should parse");
    };
    assert!(written.eq_ignore_case(&canonical));
    assert_eq!(written.normalized(), canonical.normalized());
    assert!(!written.eq_ignore_case(&AttrPath::new("manager")));
}

#[test]
fn attr_path_bare_schema_is_attribute() {
    let parsed = AttrPath::parse(ENTERPRISE_USER_SCHEMA);

    assert_eq!(parsed, Ok(AttrPath::new(ENTERPRISE_USER_SCHEMA)));
}

#[test]
fn attr_path_display_round_trips() {
    let text = "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName";

    assert_eq!(
        AttrPath::parse(text).map(|parsed| parsed.to_string()),
        Ok(text.to_owned())
    );
}

fn sample_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": "BJensen@example.com",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "meta": {"lastModified": "2011-05-13T04:42:34Z"},
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "mgr-1"}}
    })
}

#[test]
fn matches_evaluates_rfc_examples() {
    let user = sample_user();
    let cases = [
        (r#"userName eq "bjensen@example.com""#, true),
        (r#"USERNAME Eq "BJENSEN@EXAMPLE.COM""#, true),
        (r#"userName eq "other""#, false),
        (r#"name.familyName co "O'Malley""#, true),
        (r#"userName sw "bj""#, true),
        (r#"userName ew "example.com""#, true),
        ("title pr", true),
        ("nickName pr", false),
        (r#"title pr and userType eq "Employee""#, true),
        (r#"title pr or userType eq "Intern""#, true),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            true,
        ),
        (
            r#"emails[type eq "home" and value co "@example.com"]"#,
            false,
        ),
        (
            r#"emails[type eq "work"].value eq "bjensen@example.com""#,
            true,
        ),
        (
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            false,
        ),
        (r#"emails.value eq "babs@jensen.org""#, true),
        (r#"emails eq "babs@jensen.org""#, true),
        (r#"not (userName eq "x")"#, true),
        (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
        ("active eq true", true),
        ("active eq false", false),
        (r#"nickName ne "x""#, true),
        ("nickName eq null", true),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "mgr-1""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen""#,
            true,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse(input).matches(&user), expected, "filter {input:?}");
    }
}

#[test]
fn matches_compares_numbers() {
    let resource = json!({"age": 42});

    assert!(parse("age gt 41").matches(&resource));
    assert!(parse("age le 42.0").matches(&resource));
    assert!(!parse("age lt 42").matches(&resource));
    assert!(!parse(r#"age eq "42""#).matches(&resource));
}

#[test]
fn matches_simple_multi_valued_by_value() {
    let resource = json!({"tags": ["red", "blue"]});

    assert!(parse(r#"tags[value eq "blue"]"#).matches(&resource));
    assert!(!parse(r#"tags[value eq "green"]"#).matches(&resource));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_filter_never_panics_on_arbitrary_text(input in "\\PC{0,2048}") {
        let _ = parse_filter(&input);
    }

    #[test]
    fn parse_filter_never_panics_on_filter_like_text(
        input in r#"([a-zA-Z.:\[\]()" \\]|eq|and|or|not|pr|"[a-z]*"|[0-9]+){0,300}"#
    ) {
        let _ = parse_filter(&input);
    }

    #[test]
    fn parse_filter_rejects_deep_parentheses(depth in (MAX_FILTER_DEPTH + 1)..3000usize) {
        let input = format!("{}a pr{}", "(".repeat(depth), ")".repeat(depth));
        let result = parse_filter(&input);
        prop_assert_eq!(result.err().and_then(|error| error.scim_type), Some(ScimType::InvalidFilter));
    }

    #[test]
    fn parsed_filters_evaluate_without_panicking(input in r#"([a-z.\[\]()" ]|eq|co|gt|and|or|not|pr|"[a-z]*"){0,120}"#) {
        if let Ok(filter) = parse_filter(&input) {
            let _ = filter.matches(&sample_user());
        }
    }
}
