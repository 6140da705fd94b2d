//! Properties of the parsers and rules over arbitrary input: no panic, round
//! trips hold, a changed secret never authenticates, and no sequence of
//! extensions passes the maximum lifespan.

use std::time::Duration;

use getrandom::{SysRng, rand_core::UnwrapErr};
use proptest::prelude::*;

use crate::{
    AccessDecision, AccessRule, AssuranceLevel, Authorization, Extension, FieldPath, NewSession,
    Nonce, Permission, SessionId, SessionKey, SessionPolicy, Timestamp,
};

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

proptest! {
    #[test]
    fn parsers_never_panic(text in ".{0,200}") {
        let _ = SessionKey::parse(&text);
        let _ = Nonce::parse(&text);
        let _ = text.parse::<SessionId>();
        let _ = Permission::parse(&text, &FieldPath::from("p"));
        let _ = crate::ResourceGlob::parse(&text, &FieldPath::from("r"));
        let _ = crate::parse_batch(std::slice::from_ref(&text));
    }

    #[test]
    fn prefixed_garbage_is_not_a_key(body in "[A-Za-z0-9_-]{0,120}") {
        // Random base64url almost never carries a valid CRC-32; when it
        // does, it must still decode to exactly a key's length.
        if let Some(key) = SessionKey::parse(&format!("sigil_sk_{body}")) {
            prop_assert_eq!(key.expose(), format!("sigil_sk_{body}"));
        }
    }

    #[test]
    fn a_changed_key_never_authenticates(position in 9usize..79, replacement in "[A-Za-z0-9_-]") {
        let (record, key, nonce) = NewSession::new("", [], None)
            .expect("valid")
            .issue(&SessionPolicy::default(), NOW, &mut UnwrapErr(SysRng))
            .expect("issued");
        let authorization = Authorization::new(&nonce.expose(), &["p".into()], vec![], None, "", AssuranceLevel::Aal1)
            .expect("valid");
        let active = record.authorize(&authorization, &SessionPolicy::default(), NOW).expect("authorized");
        let mut text = key.expose().into_bytes();
        prop_assume!(text[position] != replacement.as_bytes()[0]);
        text[position] = replacement.as_bytes()[0];
        let changed = String::from_utf8(text).expect("ascii");
        if let Some(changed) = SessionKey::parse(&changed) {
            prop_assert!(active.authenticate(&changed, NOW).is_err());
        }
    }

    #[test]
    fn extensions_never_pass_the_maximum_lifespan(steps in proptest::collection::vec((0u64..=40 * 86_400, 1u64..=40 * 86_400), 1..20)) {
        let policy = SessionPolicy::default();
        let (record, _, nonce) = NewSession::new("", [], None)
            .expect("valid")
            .issue(&policy, NOW, &mut UnwrapErr(SysRng))
            .expect("issued");
        let authorization = Authorization::new(&nonce.expose(), &["p".into()], vec![], None, "", AssuranceLevel::Aal1)
            .expect("valid");
        let mut record = record.authorize(&authorization, &policy, NOW).expect("authorized");
        let mut now = NOW;
        for (wait, lifespan) in steps {
            now = now.plus(Duration::from_secs(wait));
            let extension = Extension::new(Some(Duration::from_secs(lifespan))).expect("positive");
            if let Ok(Some(next)) = record.extend(extension, &policy, now) {
                record = next;
            }
            prop_assert!(record.session.expires_at <= now.plus(policy.max_lifespan));
        }
    }

    #[test]
    fn glob_rules_never_panic_and_decide_by_the_first_match(resource in "[a-z/*?.]{0,40}", asked in "[a-z/]{0,40}") {
        if let Ok(rule) = AccessRule::new(1, String::new(), &resource, &["read".into()], &FieldPath::from("rules[0]")) {
            let rules = vec![rule];
            let permission = Permission::parse("read", &FieldPath::from("p")).expect("valid");
            let decision = AccessDecision::decide(&[], &rules, &permission, Some(&asked));
            prop_assert_eq!(decision.is_allowed(), rules[0].resource.matches(&asked));
        }
    }
}
