//! The PostgreSQL mirror against a server as partners run it: TLS only, a certificate of an
//! authority of the test's own, passwords checked by SCRAM. `verify-full` to the certificate's
//! name works; to another name, or with another authority, it is refused; a plain connection
//! is refused with a message that says to add `sslmode`; no message shows the password.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use referrals_mirror::postgres::PgMirror;
use referrals_testkit::postgres::{Secure, Server};

const PASSWORD: &str = "s3cret-Of-The-Test";

/// An authority named `name`, and its PEM.
fn authority(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    (Issuer::new(params, key), pem)
}

/// What a server of the certificate of `name`, signed by `issuer`, needs.
fn server_of(issuer: &Issuer<'_, KeyPair>, name: &str) -> Secure {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    let certificate = params.signed_by(&key, issuer).unwrap().pem();
    Secure {
        certificate,
        key: key.serialize_pem(),
        password: PASSWORD.to_owned(),
    }
}

#[tokio::test]
async fn verify_full_works_to_the_right_name_and_is_refused_otherwise() {
    let (issuer, authority_pem) = authority("the test's authority");
    let Some(server) = Server::start_secure(&server_of(&issuer, "localhost")) else {
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    let ca = folder.path().join("ca.pem");
    std::fs::write(&ca, &authority_pem).unwrap();
    let (_, other_pem) = authority("another authority");
    let other = folder.path().join("other.pem");
    std::fs::write(&other, other_pem).unwrap();
    let port = server.port();
    let url = |host: &str, tail: &str| {
        format!("postgres://postgres:{PASSWORD}@{host}:{port}/postgres{tail}")
    };
    let verified = url(
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let mirror = PgMirror::connect(&verified).await.unwrap();
    let rows: i64 = mirror
        .client()
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "the connection is encrypted");
    drop(mirror);

    // The same, as key=value words.
    let words = format!(
        "host=localhost port={port} user=postgres password={PASSWORD} dbname=postgres \
         sslmode=verify-full sslrootcert={}",
        ca.display()
    );
    PgMirror::connect(&words).await.unwrap();
    // verify-ca checks the chain, not the name.
    let chain_only = url(
        "127.0.0.1",
        &format!("?sslmode=verify-ca&sslrootcert={}", ca.display()),
    );
    PgMirror::connect(&chain_only).await.unwrap();
    // prefer (the default) and require: encrypted, the certificate not checked.
    PgMirror::connect(&url("127.0.0.1", "")).await.unwrap();
    PgMirror::connect(&url("127.0.0.1", "?sslmode=require"))
        .await
        .unwrap();

    let refused = [
        (
            url(
                "127.0.0.1",
                &format!("?sslmode=verify-full&sslrootcert={}", ca.display()),
            ),
            "not valid for name",
        ),
        (
            url(
                "localhost",
                &format!("?sslmode=verify-full&sslrootcert={}", other.display()),
            ),
            "issuer",
        ),
        (url("localhost", "?sslmode=verify-full"), "sslrootcert"),
        (url("127.0.0.1", "?sslmode=disable"), "sslmode"),
        (
            format!(
                "postgres://postgres:wrong-{PASSWORD}@localhost:{port}/postgres?sslmode=require"
            ),
            "password",
        ),
    ];
    for (address, said) in refused {
        let error = PgMirror::connect(&address).await.unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains(PASSWORD), "the password is shown: {text}");
        let text = text.to_lowercase();
        assert!(
            text.contains(said),
            "{address}: the error says {said}: {text}"
        );
    }
}
