//! Sealing objects and agency signatures end to end, against the real database: data keys stored
//! in the agency's `data_keys`, streamed sealing and opening, what a tampered, truncated,
//! reordered or foreign stream does, key rotation with re-wrap, revocation, another agency, and an
//! agency whose keys are in AWS KMS (moto).

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use writ_agency_keys::seal::{CHUNK_SIZE, HEADER_SIZE, RECORD_SIZE};
use writ_agency_keys::{
    AgencySignature, KeyLifecycleError, Keyring, OpenSummary, SealError, SealSummary,
    SignatureError, StreamError, open, seal, sign, verify,
};
use writ_audit_log::Caller;
use writ_keys::{AwsKmsProvider, KeyError, KeyProvider, KeyPurpose, KeySpec, LocalProvider};
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{Moto, TestDb, audit_actions};

/// Deterministic bytes that differ at every offset.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect()
}

fn keyring(db: &TestDb) -> Keyring {
    Keyring::new(db.pool.clone(), db.keys.clone())
}

/// Seals `plain` as object `id` the way an upload would: the data key is committed first, then
/// the plaintext streams through in network-sized pieces. Returns the sealed object's pieces.
async fn seal_object(
    keys: &Keyring,
    pool: &sqlx::PgPool,
    agency: &Agency,
    id: Uuid,
    plain: &[u8],
) -> (Vec<Bytes>, SealSummary) {
    let mut tx = TenantTx::begin(pool, agency).await.unwrap();
    let sealer = seal(&mut tx, keys, id, "document").await.unwrap();
    tx.commit().await.unwrap();
    let input: Vec<Result<Bytes, Infallible>> = plain
        .chunks(10_007)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let sealing = sealer.into_stream(stream::iter(input));
    let done = sealing.completion();
    let pieces: Vec<Bytes> = sealing.map(|r| r.unwrap()).collect().await;
    (pieces, done.get().unwrap())
}

/// Opens a sealed object as object `id` with `label`: the plaintext the stream released, and how
/// it ended.
async fn open_object(
    keys: &Keyring,
    pool: &sqlx::PgPool,
    agency: &Agency,
    id: Uuid,
    label: &str,
    sealed: Vec<Bytes>,
) -> (Vec<u8>, Result<OpenSummary, SealError>) {
    let mut tx = TenantTx::begin(pool, agency).await.unwrap();
    let opener = match open(&mut tx, keys, id, label).await {
        Ok(o) => o,
        Err(e) => return (Vec::new(), Err(e)),
    };
    // The transaction is not held while the object streams.
    tx.commit().await.unwrap();
    let mut opening = opener.into_stream(stream::iter(sealed.into_iter().map(Ok::<_, Infallible>)));
    let done = opening.completion();
    let mut released = Vec::new();
    while let Some(item) = opening.next().await {
        match item {
            Ok(plain) => released.extend_from_slice(&plain),
            Err(StreamError::Seal(e)) => {
                assert!(opening.next().await.is_none(), "nothing after an error");
                return (released, Err(e));
            }
            Err(StreamError::Input(never)) => match never {},
        }
    }
    (released, Ok(done.get().unwrap()))
}

async fn data_key_versions(db: &TestDb, agency: &Agency, ids: &[Uuid]) -> Vec<i32> {
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    let mut out = Vec::new();
    for id in ids {
        let v: i32 = sqlx::query_scalar("SELECT kek_version FROM data_keys WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await
            .unwrap();
        out.push(v);
    }
    tx.commit().await.unwrap();
    out
}

#[tokio::test]
async fn sealed_objects_round_trip_byte_exact_with_their_hash() {
    let db = TestDb::new().await;
    let agency = db.onboard("seal-pd").await;
    let keys = keyring(&db);
    let mut ids = Vec::new();
    for len in [0, 1, CHUNK_SIZE, 10 * CHUNK_SIZE + 77] {
        let plain = data(len);
        let id = Uuid::now_v7();
        ids.push(id);
        let (sealed, summary) = seal_object(&keys, &db.pool, &agency, id, &plain).await;
        let sha: [u8; 32] = Sha256::digest(&plain).into();
        assert_eq!(summary.sha256, sha, "len {len}");
        assert_eq!(summary.bytes, len as u64);
        assert_eq!(summary.chunks, (len / CHUNK_SIZE + 1) as u64);
        assert_eq!(sealed[0].len(), HEADER_SIZE);
        assert_eq!(&sealed[0][..8], b"WRITSEAL");
        let sealed_len: usize = sealed.iter().map(Bytes::len).sum();
        assert_eq!(sealed_len as u64, summary.sealed_bytes);
        // Nothing of the plaintext shows in the sealed form.
        if len >= 64 {
            let all: Vec<u8> = sealed.iter().flat_map(|b| b.iter().copied()).collect();
            assert!(!all.windows(32).any(|w| w == &plain[..32]));
        }

        let (opened, outcome) = open_object(&keys, &db.pool, &agency, id, "document", sealed).await;
        let opened_summary = outcome.unwrap();
        assert!(opened == plain, "len {len}");
        assert_eq!(opened_summary.sha256, sha);
        assert_eq!(opened_summary.chunks, summary.chunks);
    }
    // Each object has its own data key, under the object's id, wrapped by KEK version 1.
    assert_eq!(data_key_versions(&db, &agency, &ids).await, vec![1; 4]);
    // The wraps and unwraps are key uses, audited as key.access.
    assert_eq!(
        writ_agency_keys::flush_key_access(&db.pool, &db.keys)
            .await
            .unwrap(),
        1
    );
    assert!(
        audit_actions(&db, &agency)
            .await
            .contains(&"key.access".to_owned())
    );
}

#[tokio::test]
async fn a_tampered_truncated_reordered_or_foreign_stream_stops_at_the_bad_chunk() {
    let db = TestDb::new().await;
    let agency = db.onboard("tamper-pd").await;
    let keys = keyring(&db);
    let plain = data(4 * CHUNK_SIZE + 100);
    let id = Uuid::now_v7();
    let (sealed, _) = seal_object(&keys, &db.pool, &agency, id, &plain).await;
    let other = Uuid::now_v7();
    let (foreign, _) = seal_object(&keys, &db.pool, &agency, other, &plain).await;
    // Pieces: the header, four full records, the final record.
    assert_eq!(sealed.len(), 6);
    assert!(sealed[1..5].iter().all(|r| r.len() == RECORD_SIZE));

    let mut flipped = sealed.clone();
    let mut record = flipped[3].to_vec();
    record[1000] ^= 0x10;
    flipped[3] = Bytes::from(record);
    let mut truncated = sealed.clone();
    truncated.pop();
    let mut reordered = sealed.clone();
    reordered.swap(2, 3);
    let mut spliced = sealed.clone();
    spliced[4] = foreign[4].clone();

    for (name, pieces, released_chunks) in [
        ("flipped bit in chunk 2", flipped, 2),
        ("final chunk dropped", truncated, 4),
        ("chunks 1 and 2 swapped", reordered, 1),
        ("chunk 3 of another object", spliced, 3),
    ] {
        let (released, outcome) =
            open_object(&keys, &db.pool, &agency, id, "document", pieces).await;
        match (name, &outcome) {
            ("final chunk dropped", Err(SealError::Truncated { chunks: 4 })) => {}
            (_, Err(SealError::Corrupt { chunk })) if *chunk == released_chunks as u64 => {}
            _ => panic!("{name}: {outcome:?}"),
        }
        assert!(outcome.as_ref().unwrap_err().is_integrity_failure());
        // Only the authentic chunks before the bad one were released.
        assert_eq!(released.len(), released_chunks * CHUNK_SIZE, "{name}");
        assert!(released[..] == plain[..released.len()], "{name}");
    }

    // Sealed under another label, or opened as another object: nothing at all.
    let (released, outcome) = open_object(
        &keys,
        &db.pool,
        &agency,
        id,
        "oath-recording",
        sealed.clone(),
    )
    .await;
    assert!(matches!(outcome, Err(SealError::Corrupt { chunk: 0 })));
    assert!(released.is_empty());
    let (released, outcome) =
        open_object(&keys, &db.pool, &agency, other, "document", sealed).await;
    assert!(matches!(outcome, Err(SealError::Corrupt { chunk: 0 })));
    assert!(released.is_empty());
}

#[tokio::test]
async fn another_agencys_transaction_or_provider_cannot_open_it() {
    let db = TestDb::new().await;
    let mine = db.onboard("mine-pd").await;
    let theirs = db.onboard("theirs-pd").await;
    let keys = keyring(&db);
    let plain = data(CHUNK_SIZE + 3);
    let id = Uuid::now_v7();
    let (sealed, _) = seal_object(&keys, &db.pool, &mine, id, &plain).await;

    // The other agency's walls do not show this agency's data key.
    let (released, outcome) =
        open_object(&keys, &db.pool, &theirs, id, "document", sealed.clone()).await;
    assert!(
        matches!(outcome, Err(SealError::Key(KeyLifecycleError::NotFound))),
        "{outcome:?}"
    );
    assert!(released.is_empty());

    // A server with another master key cannot unwrap it.
    let dir = tempfile::tempdir().unwrap();
    let stranger = Keyring::new(
        db.pool.clone(),
        KeyProvider::new(LocalProvider::open_or_create(dir.path().join("other.key")).unwrap()),
    );
    let (released, outcome) =
        open_object(&stranger, &db.pool, &mine, id, "document", sealed.clone()).await;
    assert!(
        matches!(outcome, Err(SealError::Key(KeyLifecycleError::Keys(_)))),
        "{outcome:?}"
    );
    assert!(released.is_empty());

    // The same object id sealed by the other agency is another object, under another key.
    let (theirs_sealed, _) = seal_object(&keys, &db.pool, &theirs, id, &plain).await;
    let (released, outcome) =
        open_object(&keys, &db.pool, &mine, id, "document", theirs_sealed).await;
    assert!(matches!(outcome, Err(SealError::Corrupt { chunk: 0 })));
    assert!(released.is_empty());
    let (opened, outcome) = open_object(&keys, &db.pool, &mine, id, "document", sealed).await;
    outcome.unwrap();
    assert!(opened == plain);
}

#[tokio::test]
async fn an_object_is_sealed_once_and_the_transaction_stays_usable() {
    let db = TestDb::new().await;
    let agency = db.onboard("once-pd").await;
    let keys = keyring(&db);
    let id = Uuid::now_v7();
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    seal(&mut tx, &keys, id, "document").await.unwrap();
    let again = seal(&mut tx, &keys, id, "document").await;
    assert!(
        matches!(again, Err(SealError::AlreadySealed(x)) if x == id),
        "{again:?}"
    );
    let bad_label = seal(&mut tx, &keys, Uuid::now_v7(), "Not A Label").await;
    assert!(
        matches!(bad_label, Err(SealError::Label(_))),
        "{bad_label:?}"
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM data_keys")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn sealed_objects_open_after_a_kek_rotation_rewraps_their_keys() {
    let db = TestDb::new().await;
    let agency = db.onboard("rewrap-pd").await;
    let keys = keyring(&db);
    let mut objects = Vec::new();
    for len in [5, 3 * CHUNK_SIZE + 9] {
        let plain = data(len);
        let id = Uuid::now_v7();
        let (sealed, _) = seal_object(&keys, &db.pool, &agency, id, &plain).await;
        assert_eq!(&sealed[0][14..18], &1u32.to_be_bytes());
        objects.push((id, plain, sealed));
    }

    writ_agency_keys::rotate(
        &db.pool,
        &db.keys,
        &agency,
        KeyPurpose::KeyEncryption,
        &Caller::system(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    while writ_agency_keys::rewrap_step(&db.pool, &db.keys, &agency, 100)
        .await
        .unwrap()
        .is_some_and(|job| job.status == "running")
    {}
    let ids: Vec<Uuid> = objects.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(data_key_versions(&db, &agency, &ids).await, vec![2, 2]);
    // With version 1 revoked, only the re-wrapped data keys can still be read.
    writ_agency_keys::disable_version(
        &db.pool,
        &db.keys,
        &agency,
        KeyPurpose::KeyEncryption,
        1,
        "rotated out",
        false,
        &Caller::system(),
    )
    .await
    .unwrap();

    for (id, plain, sealed) in objects {
        let (opened, outcome) = open_object(&keys, &db.pool, &agency, id, "document", sealed).await;
        outcome.unwrap();
        assert!(opened == plain);
    }
    // A new object is sealed under version 2, which its header records.
    let (sealed, _) = seal_object(&keys, &db.pool, &agency, Uuid::now_v7(), b"new").await;
    assert_eq!(&sealed[0][14..18], &2u32.to_be_bytes());

    let actions = audit_actions(&db, &agency).await;
    for action in ["key.rotation", "key.rewrap.completed", "key.revocation"] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_large_upload_streams_through_one_chunk_of_memory() {
    const TOTAL: usize = 64 << 20;
    const PIECE_MAX: usize = 256 << 10;
    let db = TestDb::new().await;
    let agency = db.onboard("large-pd").await;
    let keys = keyring(&db);
    let id = Uuid::now_v7();
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let sealer = seal(&mut tx, &keys, id, "document").await.unwrap();
    tx.commit().await.unwrap();

    // Pieces of irregular size cut (without copying) from one 1 MiB pattern, as a client
    // uploads them; the test keeps no copy of the object either.
    let pattern = Bytes::from(data(1 << 20));
    let mut sent = 0usize;
    let mut sent_hash = Sha256::new();
    let mut pieces = Vec::new();
    while sent < TOTAL {
        let size = (sent % (PIECE_MAX - 1000) + 1000).min(TOTAL - sent);
        let start = sent % (pattern.len() - PIECE_MAX);
        let piece = pattern.slice(start..start + size);
        sent_hash.update(&piece);
        sent += size;
        pieces.push(Ok::<_, Infallible>(piece));
    }
    let mut sealing = sealer.into_stream(stream::iter(pieces));
    let done = sealing.completion();

    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let mut opener = open(&mut tx, &keys, id, "document").await.unwrap();
    tx.commit().await.unwrap();
    let mut opened_hash = Sha256::new();
    let mut opened = 0usize;
    while let Some(record) = sealing.next().await {
        for plain in opener.update(&record.unwrap()).unwrap() {
            opened_hash.update(&plain);
            opened += plain.len();
        }
        assert!(sealing.peak_buffered() <= RECORD_SIZE + PIECE_MAX);
    }
    let (tail, opened_summary) = opener.finish().unwrap();
    opened_hash.update(&tail);
    opened += tail.len();

    let summary = done.get().unwrap();
    let sha: [u8; 32] = sent_hash.finalize().into();
    assert_eq!(summary.bytes, TOTAL as u64);
    assert_eq!(summary.sha256, sha);
    assert_eq!(opened, TOTAL);
    assert_eq!(<[u8; 32]>::from(opened_hash.finalize()), sha);
    assert_eq!(opened_summary.sha256, sha);
}

#[tokio::test]
async fn agency_signatures_verify_across_rotation_and_not_after_revocation() {
    let db = TestDb::new().await;
    let agency = db.onboard("sign-pd").await;
    let other = db.onboard("other-pd").await;
    let keys = keyring(&db);
    let message = br#"{"type":"writ.signature-record","documentSha256":"ab12"}"#;

    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let first = sign(&mut tx, &keys, message).await.unwrap();
    assert_eq!(first.algorithm, "ecdsa-p256-sha256");
    assert_eq!(first.key_version, 1);
    // The key id is the one the audit key history publishes.
    let published = writ_audit_log::verifier_keys(&db.pool, agency.id)
        .await
        .unwrap();
    assert_eq!(first.key_id, published[0].key_id());
    let ok = verify(&mut tx, &keys, message, &first).await.unwrap();
    assert_eq!((ok.key_version, ok.current), (1, true));

    // Stored as JSON and read back, it still verifies.
    let json = serde_json::to_string(&first).unwrap();
    let back: AgencySignature = serde_json::from_str(&json).unwrap();
    verify(&mut tx, &keys, message, &back).await.unwrap();

    let changed = br#"{"type":"writ.signature-record","documentSha256":"ab13"}"#;
    let refused = verify(&mut tx, &keys, changed, &first).await;
    assert!(
        matches!(refused, Err(SignatureError::Invalid)),
        "{refused:?}"
    );
    let mut wrong_key = first.clone();
    wrong_key.key_version = 9;
    assert!(matches!(
        verify(&mut tx, &keys, message, &wrong_key).await,
        Err(SignatureError::UnknownKey(9))
    ));
    let mut wrong_alg = first.clone();
    wrong_alg.algorithm = "ES512".into();
    assert!(matches!(
        verify(&mut tx, &keys, message, &wrong_alg).await,
        Err(SignatureError::Algorithm(_))
    ));
    tx.commit().await.unwrap();

    // Another agency's key history does not verify it.
    let mut tx = TenantTx::begin(&db.pool, &other).await.unwrap();
    let foreign = verify(&mut tx, &keys, message, &first).await;
    assert!(
        matches!(foreign, Err(SignatureError::Invalid)),
        "{foreign:?}"
    );
    tx.commit().await.unwrap();

    writ_agency_keys::rotate(
        &db.pool,
        &db.keys,
        &agency,
        KeyPurpose::Signing,
        &Caller::system(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let old = verify(&mut tx, &keys, message, &first).await.unwrap();
    assert_eq!((old.key_version, old.current), (1, false));
    let second = sign(&mut tx, &keys, message).await.unwrap();
    assert_eq!(second.key_version, 2);
    assert_ne!(second.key_id, first.key_id);
    assert!(
        verify(&mut tx, &keys, message, &second)
            .await
            .unwrap()
            .current
    );
    tx.commit().await.unwrap();

    writ_agency_keys::disable_version(
        &db.pool,
        &db.keys,
        &agency,
        KeyPurpose::Signing,
        1,
        "compromised",
        false,
        &Caller::system(),
    )
    .await
    .unwrap();
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    assert!(matches!(
        verify(&mut tx, &keys, message, &first).await,
        Err(SignatureError::KeyRevoked(1))
    ));
    verify(&mut tx, &keys, message, &second).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_agency_on_aws_kms_seals_opens_and_signs() {
    let guard = Moto::exclusive().await;
    let db = TestDb::new().await;
    let provider = KeyProvider::new(LocalProvider::open_or_create(&db.master_key_file).unwrap())
        .with_aws(
            AwsKmsProvider::with_endpoint(&guard.moto.endpoint, "us-east-1", "testing", "testing")
                .await
                .unwrap(),
        );
    let agency = writ_tenancy::onboard(
        &db.pool,
        &provider,
        writ_tenancy::NewAgency {
            slug: "kms-seal-pd",
            name: "KMS Sealing Police",
            key_spec: KeySpec::AwsKms {
                kek_key_id: None,
                signing_key_id: None,
            },
        },
        writ_tenancy::tenant_migrations(),
    )
    .await
    .unwrap();
    assert_eq!(agency.key_provider, "aws-kms");
    let keys = Keyring::new(db.pool.clone(), provider);

    let plain = data(3 * CHUNK_SIZE + 5);
    let id = Uuid::now_v7();
    let (sealed, summary) = seal_object(&keys, &db.pool, &agency, id, &plain).await;
    let (opened, outcome) =
        open_object(&keys, &db.pool, &agency, id, "document", sealed.clone()).await;
    assert_eq!(outcome.unwrap().sha256, summary.sha256);
    assert!(opened == plain);

    let mut flipped = sealed.clone();
    let mut last = flipped[4].to_vec();
    last[0] ^= 1;
    flipped[4] = Bytes::from(last);
    let (released, outcome) = open_object(&keys, &db.pool, &agency, id, "document", flipped).await;
    assert!(matches!(outcome, Err(SealError::Corrupt { chunk: 3 })));
    assert_eq!(released.len(), 3 * CHUNK_SIZE);

    // A server without AWS KMS configured cannot unwrap the data key.
    let local_only = Keyring::new(db.pool.clone(), db.keys.clone());
    let (_, outcome) = open_object(&local_only, &db.pool, &agency, id, "document", sealed).await;
    assert!(
        matches!(
            outcome,
            Err(SealError::Key(KeyLifecycleError::Keys(
                KeyError::NotConfigured(_)
            )))
        ),
        "{outcome:?}"
    );

    // KMS signs (RAW message type); the signature verifies locally with the published key.
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let signature = sign(&mut tx, &keys, b"evidence certificate").await.unwrap();
    verify(&mut tx, &keys, b"evidence certificate", &signature)
        .await
        .unwrap();
    assert!(matches!(
        verify(&mut tx, &keys, b"evidence certificatf", &signature).await,
        Err(SignatureError::Invalid)
    ));
    tx.commit().await.unwrap();
}
