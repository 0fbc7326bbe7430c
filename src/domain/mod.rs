//! Plain Rust types that the rest of herald agrees on: topic names and
//! patterns, log positions and resume cursors, content filters, messages
//! and their wire encoding. Nothing here knows about axum or sqlx.

pub mod cursor;
pub mod filter;
pub mod message;
pub mod topic;
pub mod units;
pub mod webhook;

pub use cursor::{Cursor, CursorError, Position};
pub use message::{EventType, Message, NewMessage, Payload, Timestamp};
pub use topic::{TopicError, TopicName, TopicPattern, TopicSelector};
