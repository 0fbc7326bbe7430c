//! Each topic's rules while herald runs: its configuration, read from the
//! database (so every node shares it) and kept here with its schema
//! compiled, for the publish path. A change on this node takes effect at
//! once; one made on another node within [`TopicRules::REFRESH`].
//!
//! - [`schema`]: a topic's compiled JSON Schema and its violations.

pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{TopicConfig, TopicName};
use crate::storage::{Store, StoreError};
pub use schema::{Schema, SchemaViolation};

/// A topic's configuration, ready to apply.
#[derive(Debug, Default)]
pub struct TopicRules {
    pub config: TopicConfig,
    pub schema: Option<Arc<Schema>>,
}

impl TopicRules {
    /// How long a node trusts what it read before reading it again.
    pub const REFRESH: Duration = Duration::from_secs(1);

    /// Rules from stored configuration text. Text that no longer parses
    /// (edited by hand) is logged and treated as no configuration.
    fn from_stored(topic: &str, text: Option<&str>) -> Self {
        let Some(text) = text else {
            return Self::default();
        };
        let config: TopicConfig = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(topic, error = %e, "stored topic configuration is unreadable; ignoring it");
                return Self::default();
            }
        };
        let schema = config.schema.as_ref().and_then(|s| match Schema::compile(s) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                tracing::error!(topic, error = %e, "stored topic schema does not compile; ignoring it");
                None
            }
        });
        Self { config, schema }
    }
}

/// Topics with a `max_subscribers`, and that limit.
pub type Limited = Arc<Vec<(String, u32)>>;

/// Topics remembered at most; past this the memory starts over.
const REMEMBERED: usize = 100_000;

struct Entry {
    read: Instant,
    text: Option<String>,
    rules: Arc<TopicRules>,
}

/// The rules of every topic published to, read through from storage.
pub struct TopicDirectory {
    store: Arc<dyn Store>,
    entries: Mutex<HashMap<String, Entry>>,
    /// [`TopicDirectory::limited`], and when it was read.
    limited: Mutex<Option<(Instant, Limited)>>,
}

impl TopicDirectory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            entries: Mutex::new(HashMap::new()),
            limited: Mutex::new(None),
        }
    }

    /// The topic's rules: remembered, or read (and compiled) again when
    /// older than [`TopicRules::REFRESH`].
    pub async fn rules(&self, topic: &TopicName) -> Result<Arc<TopicRules>, StoreError> {
        let name = topic.as_str();
        if let Some(e) = self.entries.lock().expect("poisoned").get(name)
            && e.read.elapsed() < TopicRules::REFRESH
        {
            return Ok(e.rules.clone());
        }
        let text = self.store.topic_config(name).await?;
        let mut entries = self.entries.lock().expect("poisoned");
        let rules = match entries.get(name) {
            // Unchanged: keep the compiled schema.
            Some(e) if e.text == text => e.rules.clone(),
            _ => Arc::new(TopicRules::from_stored(name, text.as_deref())),
        };
        if entries.len() >= REMEMBERED {
            entries.clear();
        }
        entries.insert(
            name.to_owned(),
            Entry {
                read: Instant::now(),
                text,
                rules: rules.clone(),
            },
        );
        Ok(rules)
    }

    /// Forgets a topic after this node changed or deleted it.
    pub fn forget(&self, topic: &str) {
        self.entries.lock().expect("poisoned").remove(topic);
        *self.limited.lock().expect("poisoned") = None;
    }

    /// Every topic with a `max_subscribers`, and that limit: what a
    /// pattern stream is checked against. Read again after
    /// [`TopicRules::REFRESH`], or at once after a change on this node.
    pub async fn limited(&self) -> Result<Limited, StoreError> {
        if let Some((read, list)) = &*self.limited.lock().expect("poisoned")
            && read.elapsed() < TopicRules::REFRESH
        {
            return Ok(list.clone());
        }
        let list: Vec<(String, u32)> = self
            .store
            .limited_topics()
            .await?
            .into_iter()
            .filter_map(|(name, text)| {
                let config: TopicConfig = serde_json::from_str(&text).ok()?;
                Some((name, config.max_subscribers?))
            })
            .collect();
        let list = Arc::new(list);
        *self.limited.lock().expect("poisoned") = Some((Instant::now(), list.clone()));
        Ok(list)
    }
}
