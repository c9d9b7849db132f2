use super::*;

// tenant_id = $tenant AND status <> 'void' AND (note IS NULL OR note LIKE 'a\_%')
static SPEC: FilterSpec = FilterSpec {
    text: "",
    condition: "",
    slots: &[
        FilterSlot {
            setting: "data_sync.f1",
            value: SlotValue::Parameter("tenant"),
            ty: FilterType::Integer,
            field: 0,
        },
        FilterSlot {
            setting: "data_sync.f2",
            value: SlotValue::Literal("void"),
            ty: FilterType::Text,
            field: 1,
        },
        FilterSlot {
            setting: "data_sync.f3",
            value: SlotValue::Literal("a\\_%"),
            ty: FilterType::Text,
            field: 2,
        },
    ],
    predicate: &Predicate::And(
        &Predicate::And(
            &Predicate::Compare {
                left: Operand::Field(0),
                op: CompareOp::Eq,
                right: Operand::Slot(0),
            },
            &Predicate::Compare {
                left: Operand::Field(1),
                op: CompareOp::NotEq,
                right: Operand::Slot(1),
            },
        ),
        &Predicate::Or(
            &Predicate::IsNull {
                operand: Operand::Field(2),
                negated: false,
            },
            &Predicate::Like {
                operand: Operand::Field(2),
                pattern: Operand::Slot(2),
                negated: false,
            },
        ),
    ),
};

fn params(tenant: &str) -> Params {
    let mut params = Params::new();
    params.set("tenant", tenant);
    params
}

fn evaluate(settings: &[(&'static str, String)], row: [Option<&str>; 3]) -> Option<bool> {
    SPEC.evaluate(&|index| row[index], settings).unwrap()
}

#[test]
fn settings_decode_parameters_and_name_the_bad_one() {
    assert_eq!(
        SPEC.settings(&params(" 7")).unwrap(),
        [
            ("data_sync.f1", "7".to_owned()),
            ("data_sync.f2", "void".to_owned()),
            ("data_sync.f3", "a\\_%".to_owned()),
        ]
    );
    assert_eq!(
        SPEC.settings(&params("seven")).unwrap_err().to_string(),
        "parameter `tenant`: `seven` is not a `bigint` value: expected an integer such as `42`"
    );
    assert_eq!(
        SPEC.settings(&Params::new()).unwrap_err().to_string(),
        "the filter uses parameter `$tenant`: give it with `--param tenant=VALUE`"
    );
    // A parameter the filter does not use is another mapping's: left alone, and
    // not part of this mapping's identity.
    let mut extra = params("7");
    extra.set("region", "eu");
    assert_eq!(SPEC.settings(&extra), SPEC.settings(&params("7")));
    let identity = identity(Some(&SPEC), &extra);
    assert_eq!(identity.as_deref(), Some(r#"{"tenant":"7"}"#));
    assert_eq!(spell_identity(identity.as_deref()), "tenant=7");
    assert_eq!(from_identity(identity.as_deref()), params("7"));
    assert_eq!(spell_identity(None), "no parameters");
}

#[test]
fn evaluation_follows_sql_null_logic() {
    let settings = SPEC.settings(&params("7")).unwrap();
    assert_eq!(
        evaluate(&settings, [Some("7"), Some("paid"), None]),
        Some(true)
    );
    assert_eq!(
        evaluate(&settings, [Some("8"), Some("paid"), None]),
        Some(false)
    );
    assert_eq!(
        evaluate(&settings, [Some("7"), Some("void"), None]),
        Some(false)
    );
    assert_eq!(
        evaluate(&settings, [Some("7"), Some("paid"), Some("a_b")]),
        Some(true)
    );
    assert_eq!(
        evaluate(&settings, [Some("7"), Some("paid"), Some("ab")]),
        Some(false)
    );
    // NULL = 7 is unknown; unknown AND true is unknown; unknown AND false is false.
    assert_eq!(evaluate(&settings, [None, Some("paid"), None]), None);
    assert_eq!(evaluate(&settings, [None, Some("void"), None]), Some(false));
}

#[test]
fn decode_reads_each_type() {
    assert_eq!(decode(FilterType::Boolean, "Yes").unwrap(), "true");
    assert_eq!(
        decode(FilterType::Uuid, "{A0EEBC999C0B4EF8BB6D6BB9BD380A11}").unwrap(),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert!(decode(FilterType::Numeric, "12.50").is_ok());
    assert!(decode(FilterType::Numeric, "12,50").is_err());
    assert!(decode(FilterType::Timestamptz, "2024-05-01 12:00:00+02").is_ok());
    assert!(decode(FilterType::Timestamptz, "2024-05-01").is_err());
    assert!(decode(FilterType::Date, "2024-02-30").is_err());
    assert!(decode(FilterType::Inet, "10.0.0.0/8").is_ok());
}

#[test]
fn numbers_and_times_order_by_value() {
    let order = |ty, left, right| compare(ty, left, right, true).unwrap();
    assert_eq!(
        order(FilterType::Numeric, "10.50", "9.999"),
        Ordering::Greater
    );
    assert_eq!(order(FilterType::Numeric, "-0.0", "0"), Ordering::Equal);
    assert_eq!(order(FilterType::Numeric, "-2", "-10"), Ordering::Greater);
    assert_eq!(order(FilterType::Numeric, "NaN", "1e3"), Ordering::Greater);
    assert_eq!(
        order(FilterType::Numeric, "1.5e3", "1500.000"),
        Ordering::Equal
    );
    assert_eq!(
        order(FilterType::Numeric, "15e-3", "0.015"),
        Ordering::Equal
    );
    assert_eq!(
        order(FilterType::Float, "NaN", "Infinity"),
        Ordering::Greater
    );
    assert_eq!(
        order(
            FilterType::Timestamptz,
            "2024-05-01 12:00:00+02",
            "2024-05-01T10:30:00Z"
        ),
        Ordering::Less
    );
    assert_eq!(
        order(FilterType::Date, "infinity", "2024-05-01"),
        Ordering::Greater
    );
    assert!(compare(FilterType::Interval, "1 day", "2 days", true).is_err());
}
