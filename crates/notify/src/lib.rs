//! writ-notify owns alerts: the outbox (`notifications` in each agency's schema), what a message
//! may say, the transports that carry it (e-mail over SMTP, texts and voice calls through a
//! Twilio-compatible HTTP API) and the delivery loop that retries with backoff and records every
//! sent or failed alert in the audit chain.
//!
//! It must never put criminal-justice information into a message: a message is rendered from a
//! warrant's number, urgency and a link only ([`message`]), at delivery, so there is nothing else
//! to leak. It never decides who is alerted or why: the domain (`writ-warrant-workflow`'s
//! on-call routing and reminders) [`enqueue`]s in its own transaction.
//!
//! # Modules
//!
//! - [`message`]: [`Channel`], [`Kind`], [`render`].
//! - [`outbox`]: [`enqueue`], [`outbox::list`].
//! - [`transport`]: the [`Notifier`] interface, [`SmtpMailer`], [`SmsProvider`], [`Transports`].
//! - [`delivery`]: [`deliver_due`], [`run_delivery`], [`backoff`].
//! - [`config`]: [`NotifyConfig`] from the environment.

pub mod config;
pub mod delivery;
pub mod error;
pub mod message;
pub mod outbox;
pub mod transport;

pub use config::NotifyConfig;
pub use delivery::{DeliveryConfig, DeliveryReport, backoff, deliver_due, run_delivery};
pub use error::{NotifyError, SendError};
pub use message::{Channel, Kind, Rendered, WarrantRef, render};
pub use outbox::{NewNotification, Notification, enqueue};
pub use transport::{
    Notifier, Outgoing, SmsConfig, SmsProvider, SmtpConfig, SmtpMailer, Transports,
};
