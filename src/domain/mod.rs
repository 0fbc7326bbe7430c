//! Plain Rust types that the rest of herald agrees on: topic names and
//! patterns, log positions and resume cursors, content filters, messages
//! and their wire encoding. Nothing here knows about axum or sqlx.

pub mod ack;
pub mod cidr;
pub mod cursor;
pub mod duration;
pub mod filter;
pub mod idempotency;
pub mod json_limits;
pub mod message;
pub mod options;
pub mod schema_bounds;
pub mod scope;
pub mod topic;
pub mod topic_config;
pub mod units;
pub mod webhook;

pub use ack::{AckId, AckIdError};
pub use cidr::{Cidr, CidrError};
pub use cursor::{Cursor, CursorError, Position};
pub use duration::{DurationError, HumanDuration};
pub use message::{EventType, Message, NewMessage, Payload, Timestamp};
pub use options::{IdempotencyKey, OrderingKey, Priority};
pub use scope::Grants;
pub use topic::{TopicError, TopicName, TopicPattern, TopicSelector};
pub use topic_config::{ConfigError, Retention, TopicConfig};
