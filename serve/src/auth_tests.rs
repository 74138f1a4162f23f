use std::io::Write;

use axum::http::HeaderValue;

use super::*;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn tokens() -> String {
    format!(
        r#"
[[token]]
name = "acme-writer"
sha256 = "{}"
tenants = ["acme"]
scopes = ["write"]

[[token]]
name = "reader"
sha256 = "{}"
tenants = ["acme", "globex"]
scopes = ["read"]

[[token]]
name = "ops"
sha256 = "{}"
tenants = ["*"]
scopes = ["admin", "read"]

[[basic]]
name = "reporter"
username = "zipkin"
password_sha256 = "{}"
tenants = ["acme"]
scopes = ["write"]
"#,
        hex::encode(sha256(b"w-secret")),
        hex::encode(sha256(b"r-secret")),
        hex::encode(sha256(b"o-secret")),
        hex::encode(sha256(b"p@ss:word"))
    )
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn credentials_scopes_and_tenants_decide() {
    let f = file(&tokens());
    let auth = Authenticator::load(f.path(), true).unwrap();
    let bearer = |t: &str| format!("Bearer {t}");

    let h = headers(&[]);
    assert!(matches!(auth.authorize(&h, Scope::Write), Err(Refused::Unauthenticated(_))));
    let h = headers(&[("authorization", &bearer("nope"))]);
    assert_eq!(auth.authorize(&h, Scope::Write), Err(Refused::Unauthenticated("invalid credentials")));
    let h = headers(&[("authorization", "Digest abc")]);
    assert!(
        matches!(auth.authorize(&h, Scope::Write), Err(Refused::Unauthenticated(m)) if m.contains("Bearer or Basic"))
    );

    // A single-tenant token fills in its tenant, and may not name another.
    let h = headers(&[("authorization", &bearer("w-secret"))]);
    let grant = auth.authorize(&h, Scope::Write).unwrap();
    assert_eq!((grant.name.as_str(), grant.tenant.as_deref()), ("acme-writer", Some("acme")));
    assert!(h.get(TENANT_HEADER).is_none(), "the request is left as it came");
    let h = headers(&[("authorization", &bearer("w-secret")), (TENANT_HEADER, "globex")]);
    assert!(matches!(auth.authorize(&h, Scope::Write), Err(Refused::Forbidden(m)) if m.contains("\"globex\"")));
    let h = headers(&[("authorization", &bearer("w-secret"))]);
    assert!(matches!(auth.authorize(&h, Scope::Read), Err(Refused::Forbidden(m)) if m.contains("read scope")));

    // Several tenants: the request must say which.
    let h = headers(&[("authorization", &bearer("r-secret"))]);
    assert!(matches!(auth.authorize(&h, Scope::Read), Err(Refused::Forbidden(m)) if m.contains("name one")));
    let h = headers(&[("authorization", &bearer("r-secret")), (TENANT_HEADER, "globex")]);
    assert_eq!(auth.authorize(&h, Scope::Read).unwrap().tenant.as_deref(), Some("globex"));
    let h = headers(&[("authorization", &bearer("o-secret")), (TENANT_HEADER, "anyone")]);
    assert!(auth.authorize(&h, Scope::Admin).is_ok(), "'*' allows every tenant");

    // Basic: the password may contain ':'.
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("zipkin:p@ss:word"));
    let h = headers(&[("authorization", &basic)]);
    assert_eq!(auth.authorize(&h, Scope::Write).unwrap().name, "reporter");
    let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("zipkin:guess"));
    let h = headers(&[("authorization", &wrong)]);
    assert!(matches!(auth.authorize(&h, Scope::Write), Err(Refused::Unauthenticated(_))));
}

#[test]
fn without_multi_tenancy_only_scopes_count() {
    let f = file(&tokens());
    let auth = Authenticator::load(f.path(), false).unwrap();
    let h = headers(&[("authorization", "Bearer r-secret")]);
    assert_eq!(auth.authorize(&h, Scope::Read).unwrap().tenant, None);
}

#[test]
fn a_bad_tokens_file_is_refused_by_name_and_a_good_change_is_picked_up() {
    for (text, says) in [
        ("[[token]]\nname='a'\nsha256='zz'\ntenants=['x']\nscopes=['read']\n", "not 64 hexadecimal"),
        ("[[token]]\nname='a'\nsha256='00'\ntenants=['x']\nscopes=['read']\ncolour='red'\n", "unknown field"),
        (
            &format!("[[token]]\nname='a'\nsha256='{}'\ntenants=[]\nscopes=['read']\n", hex::encode(sha256(b"x"))),
            "at least one tenant",
        ),
        (
            &format!("[[token]]\nname='a'\nsha256='{}'\ntenants=['x']\nscopes=['root']\n", hex::encode(sha256(b"x"))),
            "unknown variant",
        ),
        (
            &format!("[[token]]\nname='a'\nsha256='{}'\ntenants=['a/b']\nscopes=['read']\n", hex::encode(sha256(b"x"))),
            "not allowed",
        ),
    ] {
        let f = file(text);
        let error = Authenticator::load(f.path(), true).unwrap_err().to_string();
        assert!(error.contains(says) && error.contains(&f.path().display().to_string()), "{error}");
    }

    let f = file(&tokens());
    let auth = Authenticator::load(f.path(), false).unwrap();
    assert!(!auth.reload_if_changed().unwrap(), "nothing changed");
    let only_ops = format!(
        "[[token]]\nname='ops'\nsha256='{}'\ntenants=['*']\nscopes=['admin']\n",
        hex::encode(sha256(b"o-secret"))
    );
    std::fs::write(f.path(), only_ops).unwrap();
    assert!(auth.reload_if_changed().unwrap());
    let h = headers(&[("authorization", "Bearer r-secret")]);
    assert!(
        matches!(auth.authorize(&h, Scope::Read), Err(Refused::Unauthenticated(_))),
        "a removed token stops working"
    );
    std::fs::write(f.path(), "not toml at all [").unwrap();
    assert!(auth.reload_if_changed().is_err());
    let h = headers(&[("authorization", "Bearer o-secret")]);
    assert!(auth.authorize(&h, Scope::Admin).is_ok(), "a broken file keeps the previous tokens");
}

#[test]
fn expired_credentials_are_refused_and_unexpired_ones_work() {
    let entry = |name: &str, secret: &[u8], expires: &str| {
        format!(
            "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\ntenants = [\"acme\"]\nscopes = [\"read\"]\nexpires = {expires}\n",
            hex::encode(sha256(secret))
        )
    };
    let text =
        [entry("old", b"old-secret", "2020-01-01T00:00:00Z"), entry("new", b"new-secret", "2999-01-01T00:00:00+02:00")]
            .concat();
    let f = file(&text);
    let auth = Authenticator::load(f.path(), true).unwrap();
    let old = headers(&[("authorization", "Bearer old-secret")]);
    assert_eq!(auth.authorize(&old, Scope::Read), Err(Refused::Unauthenticated("these credentials have expired")));
    let new = headers(&[("authorization", "Bearer new-secret")]);
    assert_eq!(auth.authorize(&new, Scope::Read).unwrap().name, "new");

    let undated = file(&entry("x", b"x", "2027-01-01"));
    let err = Authenticator::load(undated.path(), true).unwrap_err().to_string();
    assert!(err.contains("expires must be a date and time with an offset"), "{err}");
}

#[test]
fn expiry_dates_count_from_the_unix_epoch() {
    let at = |text: &str| unix_seconds(&text.parse().unwrap());
    assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(at("2000-03-01T00:00:00Z"), Some(951_868_800));
    assert_eq!(at("2026-11-28T12:30:15Z"), Some(1_795_869_015));
    assert_eq!(at("2026-11-28T14:30:15+02:00"), Some(1_795_869_015));
    assert_eq!(at("1969-12-31T23:59:59Z"), Some(-1));
    assert_eq!(at("2026-11-28"), None, "a date alone has no moment");
}
