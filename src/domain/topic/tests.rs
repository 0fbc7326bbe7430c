use super::*;

#[test]
fn herald_reserves_the_dollar_prefix_for_its_own_topics() {
    let name = TopicName::parse("$herald.subscription.circuit").unwrap();
    assert!(name.is_reserved());
    assert!(!TopicName::parse("herald.x").unwrap().is_reserved());
    for bad in ["$herald", "$other.x", "a.$herald.x", "$herald$.x", "$"] {
        assert_eq!(TopicName::parse(bad), Err(TopicError::Reserved), "{bad}");
    }
    let topic = "$herald.delivery.dead_lettered";
    for wildcard in ["**", "*.delivery.dead_lettered", "*.**"] {
        assert!(
            !TopicPattern::parse(wildcard).unwrap().matches(topic),
            "{wildcard}"
        );
    }
    for named in ["$herald.**", "$herald.delivery.*", topic] {
        assert!(
            TopicPattern::parse(named).unwrap().matches(topic),
            "{named}"
        );
    }
    let all = TopicPattern::parse("**").unwrap();
    assert!(!all.covers(&TopicPattern::parse("$herald.**").unwrap()));
    assert!(
        TopicPattern::parse("$herald.**")
            .unwrap()
            .covers(&TopicPattern::parse("$herald.subscription.*").unwrap())
    );
}

#[test]
fn valid_names_parse() {
    for name in ["orders", "orders.eu.created", "a-b_c.D9", &"x".repeat(128)] {
        assert_eq!(TopicName::parse(name).unwrap().as_str(), name);
    }
}

#[test]
fn invalid_names_are_rejected_with_a_reason() {
    let cases: &[(&str, TopicError)] = &[
        ("", TopicError::Empty),
        (&"x".repeat(129), TopicError::TooLong(129)),
        ("a b", TopicError::InvalidChar { ch: ' ', index: 1 }),
        ("ok.é", TopicError::InvalidChar { ch: 'é', index: 3 }),
        ("a..b", TopicError::EmptyLevel { level: 2 }),
        (".a", TopicError::EmptyLevel { level: 1 }),
        ("a.", TopicError::EmptyLevel { level: 2 }),
        ("a.*", TopicError::Wildcard),
        ("a/b", TopicError::InvalidChar { ch: '/', index: 1 }),
    ];
    for (input, expected) in cases {
        assert_eq!(&TopicName::parse(input).unwrap_err(), expected, "{input:?}");
    }
}

#[test]
fn pattern_matching_follows_levels() {
    let cases: &[(&str, &str, bool)] = &[
        ("orders", "orders", true),
        ("orders", "orders.eu", false),
        ("orders.*", "orders.eu", true),
        ("orders.*", "orders", false),
        ("orders.*", "orders.eu.created", false),
        ("orders.**", "orders.eu", true),
        ("orders.**", "orders.eu.created", true),
        ("orders.**", "orders", false),
        ("*.created", "orders.created", true),
        ("*.created", "orders.eu.created", false),
        ("*", "orders", true),
        ("*", "orders.eu", false),
        ("**", "anything.at.all", true),
        ("orders.*.created", "orders.eu.created", true),
        ("orders.*.created", "orders.eu.deleted", false),
    ];
    for (pattern, topic, expected) in cases {
        let p = TopicPattern::parse(pattern).unwrap();
        assert_eq!(p.matches(topic), *expected, "{pattern} ~ {topic}");
    }
}

#[test]
fn malformed_patterns_are_rejected() {
    let cases: &[(&str, TopicError)] = &[
        (
            "orders.*x",
            TopicError::BadWildcard {
                level: 2,
                text: "*x".into(),
            },
        ),
        ("**.a", TopicError::DoubleStarNotLast),
        ("a.**.b", TopicError::DoubleStarNotLast),
        ("a..*", TopicError::EmptyLevel { level: 2 }),
        (
            "***",
            TopicError::BadWildcard {
                level: 1,
                text: "***".into(),
            },
        ),
        ("", TopicError::Empty),
    ];
    for (input, expected) in cases {
        assert_eq!(
            &TopicPattern::parse(input).unwrap_err(),
            expected,
            "{input:?}"
        );
    }
}

#[test]
fn exact_selectors_expose_their_names() {
    let s = TopicSelector::new(vec![
        TopicPattern::parse("a").unwrap(),
        TopicPattern::parse("b.c").unwrap(),
        TopicPattern::parse("a").unwrap(),
    ]);
    assert_eq!(s.exact_names(), Some(vec!["a", "b.c"]));
    let s = TopicSelector::new(vec![
        TopicPattern::parse("a").unwrap(),
        TopicPattern::parse("b.*").unwrap(),
    ]);
    assert_eq!(s.exact_names(), None);
    assert_eq!(s.key(), "a,b.*");
}
