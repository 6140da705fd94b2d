use super::*;

fn field() -> FieldPath {
    FieldPath::from("rules[0]")
}

fn rule(priority: i32, resource: &str, permissions: &[&str]) -> AccessRule {
    let permissions: Vec<String> = permissions.iter().map(|p| p.to_string()).collect();
    AccessRule::new(priority, String::new(), resource, &permissions, &field()).expect("valid rule")
}

fn permission(text: &str) -> Permission {
    Permission::parse(text, &"permission".into()).expect("valid permission")
}

/// (held permissions, rules, asked permission, resource) → (allowed, deciding priority)
fn check(
    held: &[&str],
    rules: Vec<AccessRule>,
    asked: &str,
    resource: Option<&str>,
    expected: (bool, Option<i32>),
) {
    let held: Vec<Permission> = held.iter().map(|p| permission(p)).collect();
    let rules =
        AccessRule::into_evaluation_order(rules, &"rules".into()).expect("unique priorities");
    let decision = AccessDecision::decide(&held, &rules, &permission(asked), resource);
    let deciding = match decision {
        AccessDecision::GrantedByRule(rule) | AccessDecision::DeniedByRule(rule) => {
            Some(rule.priority)
        }
        _ => None,
    };
    assert_eq!(
        (decision.is_allowed(), deciding),
        expected,
        "{asked} on {resource:?}"
    );
}

#[test]
fn decisions() {
    let rules = || {
        vec![
            rule(2, "a/**", &["read"]),
            rule(1, "a/secret/*", &["reveal"]),
        ]
    };
    check(&["read"], vec![], "read", None, (true, None));
    check(&["read"], vec![], "read", Some("x/y"), (true, None));
    check(&[], rules(), "reveal", Some("a/secret/1"), (true, Some(1)));
    check(&[], rules(), "read", Some("a/secret/1"), (false, Some(1)));
    check(&[], rules(), "read", Some("a/b/c"), (true, Some(2)));
    check(&[], rules(), "read", Some("b/1"), (false, None));
    check(&[], rules(), "reveal", None, (false, None));
    // `*` stays within one segment.
    check(
        &[],
        vec![rule(1, "a/*", &["read"])],
        "read",
        Some("a/b/c"),
        (false, None),
    );
    check(
        &[],
        vec![rule(1, "a/?", &["read"])],
        "read",
        Some("a/b"),
        (true, Some(1)),
    );
}

#[test]
fn bad_parts_name_their_field() {
    let invalid = |result: Result<AccessRule>, expected: &str| match result {
        Err(Error::InvalidField { field, .. }) => assert_eq!(field.as_str(), expected),
        other => panic!("expected invalid {expected}, got {other:?}"),
    };
    invalid(
        AccessRule::new(1, String::new(), "", &["read".into()], &field()),
        "rules[0].resource",
    );
    invalid(
        AccessRule::new(1, String::new(), "a/[", &["read".into()], &field()),
        "rules[0].resource",
    );
    invalid(
        AccessRule::new(1, String::new(), "a b", &["read".into()], &field()),
        "rules[0].resource",
    );
    invalid(
        AccessRule::new(1, String::new(), "a/*", &[], &field()),
        "rules[0].permissions",
    );
    invalid(
        AccessRule::new(1, String::new(), "a/*", &["r w".into()], &field()),
        "rules[0].permissions[0]",
    );
    invalid(
        AccessRule::new(1, "d".repeat(257), "a/*", &["read".into()], &field()),
        "rules[0].description",
    );
    let duplicate = AccessRule::into_evaluation_order(
        vec![rule(1, "a", &["r"]), rule(1, "b", &["r"])],
        &"rules".into(),
    );
    assert!(
        matches!(duplicate, Err(Error::InvalidField { field, .. }) if field.as_str() == "rules[1].priority")
    );
}

#[test]
fn permission_lists_drop_repeats_and_cap_length() {
    let field = FieldPath::from("permissions");
    let listed =
        Permission::parse_list(&["a".into(), "b".into(), "a".into()], &field).expect("valid");
    assert_eq!(listed.len(), 2);
    assert!(Permission::parse_list(&vec!["a".into(); 101], &field).is_err());
}

#[test]
fn stored_globs_compile_on_first_match_and_a_broken_one_grants_nothing() {
    let read: ResourceGlob = serde_json::from_str(r#""tokens/pci/*""#).expect("a string");
    assert_eq!(read.as_str(), "tokens/pci/*");
    assert!(read.matches("tokens/pci/4111"));
    assert!(!read.matches("tokens/pci/4111/cvv"));
    // Never written by Sigil (parse refuses it), so only a corrupt record
    // carries it: the rule matches nothing rather than failing open.
    let broken: ResourceGlob = serde_json::from_str(r#""tokens/[a""#).expect("a string");
    assert!(ResourceGlob::parse("tokens/[a", &field()).is_err());
    assert!(!broken.matches("tokens/[a"));
    assert!(!broken.matches("tokens/a"));
    assert_eq!(
        serde_json::to_string(&broken).expect("serializes"),
        r#""tokens/[a""#
    );
}
