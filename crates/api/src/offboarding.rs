//! Offboarding an agency (DESIGN §2, docs/OFFBOARDING.md), from the command line or the platform
//! API. In order, each step committed before the next:
//!
//! 1. start: the agency stops being served; `agency.offboarding` closes its audit chain and
//!    `platform.agency.offboarding` records who asked;
//! 2. the final signed export of the whole chain, kept with its SHA-256;
//! 3. the certificate of offboarding, signed with the agency's key while it still signs;
//! 4. every key version scheduled for deletion at the provider (signing key last);
//! 5. after the waiting period: stored documents removed, schema and role dropped, the agency
//!    `offboarded` (`platform.agency.offboarded`).
//!
//! A run that stops part-way (a provider outage, a crash) is resumed by the next run, by hand or
//! by the server's background loop; a step already done is not done again. One runner at a time
//! per agency (an advisory lock), so two never write the same export.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;
use writ_agency_keys::Keyring;
use writ_audit_chain::offboarding::{
    DestroyedKey, FinalExport, OFFBOARDING_FORMAT, OffboardingCertificate,
    SignedOffboardingCertificate,
};
use writ_audit_log::Caller;
use writ_keys::{KeyProvider, KeyPurpose};
use writ_tenancy::{Agency, ControlTx, Offboarding, OffboardingStep, TenantTx};

use crate::ApiError;

/// The bundle and certificate file names in the agency's export directory.
const FINAL_EXPORT_PREFIX: &str = "offboarding-final-export-";
const CERTIFICATE_FILE: &str = "offboarding-certificate.json";

/// What offboarding needs: the owner's pool (it drops the schema and role at the end), the key
/// providers, the document store and the export directory.
#[derive(Clone, Copy)]
pub struct Offboarder<'a> {
    pub pool: &'a PgPool,
    pub keys: &'a KeyProvider,
    pub documents: &'a writ_documents::DocumentStore,
    pub export_dir: &'a Path,
}

/// An offboarding as the platform API and the command line show it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffboardingView {
    agency_id: Uuid,
    slug: String,
    /// `offboarding` until the waiting period ends, then `offboarded`.
    status: String,
    requested_by: String,
    reason: String,
    started_at: DateTime<Utc>,
    /// When the providers destroy the keys, and the schema is dropped.
    deletion_after: DateTime<Utc>,
    /// The final signed export: `fileName`, `size`, `sha256`, `firstSeq`, `lastSeq`; `null` until
    /// written.
    #[schema(value_type = Option<Object>)]
    final_export: Option<Value>,
    /// The signed certificate of offboarding (`writ-agency-offboarding/1`, checked by
    /// `writ-verify offboarding`); `null` until signed.
    #[schema(value_type = Option<Object>)]
    certificate: Option<Value>,
    keys_scheduled_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

impl OffboardingView {
    fn new(agency: &Agency, status: &str, o: Offboarding) -> Self {
        Self {
            agency_id: agency.id,
            slug: agency.slug.clone(),
            status: status.to_owned(),
            requested_by: o.requested_by,
            reason: o.reason,
            started_at: o.started_at,
            deletion_after: o.deletion_after,
            final_export: o.final_export,
            certificate: o.certificate,
            keys_scheduled_at: o.keys_scheduled_at,
            completed_at: o.completed_at,
        }
    }

    pub fn agency_id(&self) -> Uuid {
        self.agency_id
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    pub fn deletion_after(&self) -> DateTime<Utc> {
        self.deletion_after
    }

    pub fn keys_scheduled(&self) -> bool {
        self.keys_scheduled_at.is_some()
    }
}

/// Who asked, as the offboarding record names them.
fn requester(caller: &Caller) -> String {
    match (&caller.invoked_by, caller.user_id()) {
        (Some(who), _) => format!(
            "os:{}@{}",
            who["osUser"].as_str().unwrap_or("unknown"),
            who["host"].as_str().unwrap_or("unknown")
        ),
        (None, Some(id)) => format!("operator:{id}"),
        (None, None) => "system".into(),
    }
}

/// An entry of the platform events about `agency`.
fn platform_event(caller: &Caller, action: &str, agency: &Agency) -> writ_audit_log::Event {
    caller
        .event(action)
        .resource("agencyId", agency.id.to_string())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Offboarder<'_> {
    fn agency_dir(&self, agency: &Agency) -> PathBuf {
        self.export_dir.join(agency.id.to_string())
    }

    /// The offboarding of `agency` as recorded, if one was started.
    pub async fn view(&self, agency: &Agency) -> Result<Option<OffboardingView>, ApiError> {
        let status = writ_tenancy::agency_by_id(self.pool, agency.id)
            .await?
            .map_or_else(|| agency.status.clone(), |a| a.status);
        Ok(writ_tenancy::offboarding(self.pool, agency.id)
            .await?
            .map(|o| OffboardingView::new(agency, &status, o)))
    }

    /// Starts offboarding `agency` (`reason` is needed then) and takes it as far as it can go
    /// now: through the scheduling of its keys, or to the end once the waiting period is over.
    /// Run again, it resumes.
    pub async fn offboard(
        &self,
        agency: &Agency,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<OffboardingView, ApiError> {
        self.start(agency, caller, reason).await?;
        self.resume(agency, caller).await
    }

    /// Step 1 alone: the agency stops being served and its chain records why. Answers whether
    /// this call started it (`false`: it was offboarding already).
    pub async fn start(
        &self,
        agency: &Agency,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<bool, ApiError> {
        let mut ctl = ControlTx::begin(self.pool).await?;
        let (started, fresh) =
            writ_tenancy::start_offboarding(&mut ctl, agency, &requester(caller), reason).await?;
        if !fresh {
            ctl.rollback().await?;
            return Ok(false);
        }
        let detail = json!({
            "slug": agency.slug,
            "reason": started.reason,
            "deletionAfter": started.deletion_after,
        });
        writ_auth_mfa::Realm::Platform(ctl.conn())
            .audit(
                platform_event(caller, "platform.agency.offboarding", agency)
                    .detail(json!({ "step": "started", "detail": detail })),
            )
            .await?;
        let mut tx = ctl.enter(agency).await?;
        writ_audit_log::record(
            &mut tx,
            &caller
                .event("agency.offboarding")
                .resource("agencyId", agency.id.to_string())
                .detail(detail),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(agency_id = %agency.id, slug = agency.slug, "agency offboarding started");
        Ok(true)
    }

    /// Takes a started offboarding as far as it can go now. Another runner at it: its state
    /// as it stands.
    pub async fn resume(
        &self,
        agency: &Agency,
        caller: &Caller,
    ) -> Result<OffboardingView, ApiError> {
        // Another runner at it: its state as it stands.
        self.as_runner(agency, caller, self.run_steps(agency, caller))
            .await?;
        self.view(agency).await?.ok_or(ApiError::NotFound)
    }

    /// Runs `work` as the agency's one offboarding runner; a failed step is recorded. `None`
    /// (nothing run) while another runner holds the agency.
    async fn as_runner(
        &self,
        agency: &Agency,
        caller: &Caller,
        work: impl Future<Output = Result<(), (&'static str, ApiError)>>,
    ) -> Result<Option<()>, ApiError> {
        let Some(guard) = writ_tenancy::try_lock_offboarding(self.pool, agency.id).await? else {
            return Ok(None);
        };
        let outcome = work.await;
        // Only the lock goes with it; a connection lost meanwhile must not hide the outcome.
        if let Err(e) = guard.rollback().await {
            tracing::warn!(agency_id = %agency.id, error = %e, "offboarding: releasing the runner lock");
        }
        match outcome {
            Ok(()) => Ok(Some(())),
            Err((step, e)) => {
                self.record_failure(agency, caller, step, &e).await;
                Err(e)
            }
        }
    }

    async fn run_steps(
        &self,
        agency: &Agency,
        caller: &Caller,
    ) -> Result<(), (&'static str, ApiError)> {
        let at = |step: &'static str| move |e: ApiError| (step, e);
        let Some(mut o) = writ_tenancy::offboarding(self.pool, agency.id)
            .await
            .map_err(|e| ("read", e.into()))?
        else {
            // Called off meanwhile: nothing left to do.
            return Ok(());
        };
        if o.completed_at.is_some() {
            return Ok(());
        }
        if o.cancel_requested_at.is_some() {
            return Err((
                "read",
                ApiError::conflict(
                    "the offboarding is being called off: finish that (cancel again), not this",
                ),
            ));
        }
        if o.final_export.is_none() {
            o.final_export = Some(
                self.final_export(agency)
                    .await
                    .map_err(at("final export"))?,
            );
        }
        let certificate = match o.certificate.take() {
            Some(stored) => stored,
            None => self.certify(agency, &o).await.map_err(at("certificate"))?,
        };
        // Written again whenever it is missing: the control plane's copy is the one kept.
        self.write_certificate_file(agency, &certificate)
            .map_err(at("certificate"))?;
        if o.keys_scheduled_at.is_none() {
            self.schedule_keys(agency, caller, &o)
                .await
                .map_err(at("keys"))?;
        } else if o.deletion_after <= Utc::now() {
            self.finish(agency, caller, &o)
                .await
                .map_err(at("finish"))?;
        }
        Ok(())
    }

    /// Step 2: the final export, of every entry the chain holds (the start entry included), once
    /// no transaction begun before the start can still commit into the chain. Each run writes a
    /// file of its own name: should two runners ever overlap, the one recorded first is the file
    /// certified, and the other's is removed.
    async fn final_export(&self, agency: &Agency) -> Result<Value, ApiError> {
        writ_tenancy::wait_for_agency_transactions(self.pool, agency.id).await?;
        let file_name = format!(
            "{FINAL_EXPORT_PREFIX}{}.tar.gz",
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let path = self.agency_dir(agency).join(&file_name);
        let written =
            writ_audit_log::export_to_file(self.pool, self.keys, agency, None, None, &path).await?;
        let export = FinalExport {
            file_name: file_name.clone(),
            size: written.size,
            sha256: written.sha256,
            first_seq: written.summary.first_seq,
            last_seq: written.summary.last_seq,
        };
        let value = serde_json::to_value(&export).map_err(ApiError::internal)?;
        let kept = writ_tenancy::note_offboarding_step(
            self.pool,
            agency.id,
            OffboardingStep::FinalExport,
            &value,
        )
        .await?;
        if kept["fileName"] != file_name.as_str() {
            let _ = std::fs::remove_file(&path);
        }
        Ok(kept)
    }

    /// Step 3: the certificate, signed with the agency's current signing key, kept in the
    /// control plane. It certifies the final export only as the file now on disk is.
    async fn certify(&self, agency: &Agency, o: &Offboarding) -> Result<Value, ApiError> {
        let final_export: FinalExport = o
            .final_export
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ApiError::Internal(format!("stored final export: {e}")))?
            .ok_or_else(|| ApiError::Internal("no final export to certify".into()))?;
        let file = self.agency_dir(agency).join(&final_export.file_name);
        let reading = file.clone();
        let on_disk = tokio::task::spawn_blocking(move || writ_audit_log::hash_file(&reading))
            .await
            .map_err(ApiError::internal)??;
        if on_disk != (final_export.size, final_export.sha256.clone()) {
            return Err(ApiError::Internal(format!(
                "{} is not the final export recorded ({} bytes, SHA-256 {}): restore it",
                file.display(),
                final_export.size,
                final_export.sha256
            )));
        }
        let mut keys = Vec::new();
        for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
            for v in writ_tenancy::agency_keys(self.pool, agency.id, purpose).await? {
                keys.push(DestroyedKey {
                    purpose: purpose.as_str().into(),
                    version: v.key.version,
                    provider: v.key.provider.clone(),
                    key_id: v.key.key_id.clone(),
                });
            }
        }
        let certificate = OffboardingCertificate {
            format: OFFBOARDING_FORMAT.into(),
            agency_id: agency.id.to_string(),
            agency_slug: agency.slug.clone(),
            agency_name: agency.name.clone(),
            requested_by: o.requested_by.clone(),
            reason: o.reason.clone(),
            started_at: ts(o.started_at),
            final_export,
            keys,
            deletion_after: ts(o.deletion_after),
            destroyed: vec![
                "every version of the agency's key-encryption key, and with it every data key and \
                 every document it protects (crypto-shredding)"
                    .into(),
                "every version of the agency's signing key".into(),
                "after the waiting period: the agency's database schema (warrants, users, \
                 documents, audit chain) and role, and its stored document objects"
                    .into(),
            ],
            issued_at: ts(Utc::now()),
        };
        let bytes = writ_audit_chain::offboarding::signing_bytes(&certificate)
            .map_err(ApiError::internal)?;
        let keyring = Keyring::new(self.pool.clone(), self.keys.clone());
        let mut tx = TenantTx::begin(self.pool, agency).await?;
        let signature = writ_agency_keys::sign(&mut tx, &keyring, &bytes).await?;
        tx.rollback().await?;
        let signed = SignedOffboardingCertificate::assemble(
            certificate,
            signature.key_id,
            signature.key_version,
            &signature.signature,
        )
        .map_err(ApiError::internal)?;
        let value = serde_json::to_value(&signed).map_err(ApiError::internal)?;
        Ok(writ_tenancy::note_offboarding_step(
            self.pool,
            agency.id,
            OffboardingStep::Certificate,
            &value,
        )
        .await?)
    }

    /// The certificate beside the final export, for handing over; written when missing.
    fn write_certificate_file(&self, agency: &Agency, certificate: &Value) -> Result<(), ApiError> {
        let file = self.agency_dir(agency).join(CERTIFICATE_FILE);
        if file.exists() {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(certificate).map_err(ApiError::internal)?;
        let partial = file.with_extension("partial");
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &file))
            .map_err(|e| ApiError::Internal(format!("{}: {e}", file.display())))
    }

    /// Step 4: every key version scheduled for deletion, each committed as its provider accepts.
    async fn schedule_keys(
        &self,
        agency: &Agency,
        caller: &Caller,
        o: &Offboarding,
    ) -> Result<(), ApiError> {
        let scheduled = writ_agency_keys::schedule_offboarding_keys(
            self.pool,
            self.keys,
            agency,
            o.deletion_after,
        )
        .await?;
        // The step and its record commit together.
        let mut ctl = ControlTx::begin(self.pool).await?;
        writ_tenancy::note_keys_scheduled(ctl.conn(), agency.id).await?;
        writ_auth_mfa::Realm::Platform(ctl.conn())
            .audit(
                platform_event(caller, "platform.agency.offboarding", agency).detail(json!({
                    "step": "keysScheduled",
                    "versionsScheduled": scheduled,
                    "deletionAfter": o.deletion_after,
                })),
            )
            .await?;
        ctl.commit().await?;
        Ok(())
    }

    /// Step 5, once the waiting period is over: the stored document objects go, then the schema
    /// and role in one transaction with `platform.agency.offboarded`, then the export directory.
    async fn finish(
        &self,
        agency: &Agency,
        caller: &Caller,
        o: &Offboarding,
    ) -> Result<(), ApiError> {
        // Should anything have reached the chain after the final export, the record says how
        // much went unexported.
        let last_seq = o
            .final_export
            .as_ref()
            .and_then(|e| e["lastSeq"].as_u64())
            .unwrap_or(0);
        let mut tx = TenantTx::begin(self.pool, agency).await?;
        let unexported = writ_audit_log::events_after(&mut tx, last_seq).await?;
        tx.rollback().await?;
        let removed = self.documents.remove_agency(agency.id).await?;
        let mut ctl = ControlTx::begin(self.pool).await?;
        let done = writ_tenancy::finish_offboarding(&mut ctl, agency).await?;
        writ_auth_mfa::Realm::Platform(ctl.conn())
            .audit(
                platform_event(caller, "platform.agency.offboarded", agency).detail(json!({
                    "slug": agency.slug,
                    "startedAt": done.started_at,
                    "documentObjectsRemoved": removed,
                    "eventsAfterFinalExport": unexported,
                })),
            )
            .await?;
        ctl.commit().await?;
        let dir = self.agency_dir(agency);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "offboarding: the agency's exports were not removed")
            }
        }
        tracing::info!(agency_id = %agency.id, slug = agency.slug, "agency offboarded");
        Ok(())
    }

    /// Calls the offboarding off within its waiting period: no step of it runs any more, every
    /// key version it scheduled is usable again (one revoked before stays revoked), the agency is
    /// served again, and the final export and certificate files go (they certify a destruction
    /// that will not happen; the platform events keep the certificate). A call-off that stops
    /// part-way is resumed by calling it off again.
    pub async fn cancel(&self, agency: &Agency, caller: &Caller) -> Result<(), ApiError> {
        let work = async {
            self.cancel_steps(agency, caller)
                .await
                .map_err(|e| ("cancel", e))
        };
        self.as_runner(agency, caller, work).await?.ok_or_else(|| {
            ApiError::conflict(
                "a step of this offboarding is running; call it off again in a moment",
            )
        })
    }

    async fn cancel_steps(&self, agency: &Agency, caller: &Caller) -> Result<(), ApiError> {
        let o = writ_tenancy::request_offboarding_cancel(self.pool, agency).await?;
        let restored =
            writ_agency_keys::cancel_offboarding_keys(self.pool, self.keys, agency, o.started_at)
                .await?;
        let mut ctl = ControlTx::begin(self.pool).await?;
        let called_off = writ_tenancy::finish_offboarding_cancel(&mut ctl, agency).await?;
        writ_auth_mfa::Realm::Platform(ctl.conn())
            .audit(
                platform_event(caller, "platform.agency.offboarding", agency).detail(json!({
                    "step": "cancelled",
                    "reason": called_off.reason,
                    "requestedBy": called_off.requested_by,
                    "startedAt": called_off.started_at,
                    "keyVersionsRestored": restored,
                    "finalExport": called_off.final_export,
                    "certificate": called_off.certificate,
                })),
            )
            .await?;
        let mut tx = ctl.enter(agency).await?;
        writ_audit_log::record(
            &mut tx,
            &caller
                .event("agency.offboarding.cancelled")
                .resource("agencyId", agency.id.to_string())
                .detail(json!({
                    "startedAt": called_off.started_at,
                    "keyVersionsRestored": restored,
                })),
        )
        .await?;
        tx.commit().await?;
        let dir = self.agency_dir(agency);
        let export = called_off
            .final_export
            .as_ref()
            .and_then(|e| e["fileName"].as_str())
            .map(|name| dir.join(name));
        for file in export.into_iter().chain([dir.join(CERTIFICATE_FILE)]) {
            if let Err(e) = std::fs::remove_file(&file)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %file.display(), error = %e, "offboarding call-off: file not removed");
            }
        }
        tracing::info!(agency_id = %agency.id, slug = agency.slug, "agency offboarding called off");
        Ok(())
    }

    /// A step that failed is on the platform's record (what failed; the details are logged).
    async fn record_failure(&self, agency: &Agency, caller: &Caller, step: &str, e: &ApiError) {
        tracing::error!(agency_id = %agency.id, step, error = %e, "offboarding step failed; the next run resumes here");
        let event = platform_event(caller, "platform.agency.offboarding", agency)
            .detail(
                json!({ "step": step, "problem": e.problem().kind, "detail": e.problem().detail }),
            )
            .failure();
        if let Err(e) = writ_auth_mfa::record_platform_event(self.pool, event).await {
            tracing::warn!(agency_id = %agency.id, error = %e, "offboarding: the failure was not recorded");
        }
    }

    /// Resumes every offboarding that stopped part-way and finishes those whose waiting period is
    /// over (the server's background loop). One agency's failure does not stop the others.
    pub async fn resume_all(&self) {
        let pending = match writ_tenancy::offboardings_pending(self.pool).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "offboarding: cannot list offboardings");
                return;
            }
        };
        for id in pending {
            let agency = match writ_tenancy::agency_by_id(self.pool, id).await {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(agency_id = %id, error = %e, "offboarding: cannot read the agency");
                    continue;
                }
            };
            // The failure is logged and recorded by `resume`.
            let _ = self.resume(&agency, &Caller::system()).await;
        }
    }
}

/// Runs forever in `writ serve`: resumes and finishes offboardings.
pub async fn run_offboarding_job(
    pool: PgPool,
    keys: KeyProvider,
    documents: writ_documents::DocumentStore,
    export_dir: PathBuf,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        Offboarder {
            pool: &pool,
            keys: &keys,
            documents: &documents,
            export_dir: &export_dir,
        }
        .resume_all()
        .await;
    }
}
