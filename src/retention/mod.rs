//! Retention: how much history each topic keeps (its own configuration,
//! else the server's defaults), and the [`pruner`] task that removes the
//! rest in bounded batches.

pub mod pruner;

use std::time::Duration;

use crate::domain::{Retention, TopicConfig};

/// The server-wide defaults (`--retention-max-age`,
/// `--retention-max-messages`); `None` keeps without bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defaults {
    pub max_age: Option<Duration>,
    pub max_messages: Option<u64>,
    /// How long webhook attempts stay in the attempt log
    /// (`--attempt-log-max-age`; None: no log is kept).
    pub attempt_log_max_age: Option<Duration>,
}

/// A topic's retention in force: each bound from the topic's configuration
/// when it sets one, else from the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub max_age: Option<Duration>,
    pub max_messages: Option<u64>,
}

impl Policy {
    pub fn of(config: &TopicConfig, defaults: Defaults) -> Self {
        let own = config.retention.unwrap_or_default();
        Self {
            max_age: own.max_age.map(|d| d.0).or(defaults.max_age),
            max_messages: own.max_messages.or(defaults.max_messages),
        }
    }

    /// As the API shows it.
    pub fn to_retention(self) -> Retention {
        Retention {
            max_age: self.max_age.map(crate::domain::HumanDuration),
            max_messages: self.max_messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::HumanDuration;

    #[test]
    fn a_topic_overrides_each_default_on_its_own() {
        let defaults = Defaults {
            attempt_log_max_age: None,
            max_age: Some(Duration::from_secs(7 * 86_400)),
            max_messages: None,
        };
        assert_eq!(
            Policy::of(&TopicConfig::default(), defaults).max_age,
            defaults.max_age
        );
        let config = TopicConfig {
            retention: Some(Retention {
                max_age: None,
                max_messages: Some(10),
            }),
            ..Default::default()
        };
        let p = Policy::of(&config, defaults);
        assert_eq!((p.max_age, p.max_messages), (defaults.max_age, Some(10)));
        let config = TopicConfig {
            retention: Some(Retention {
                max_age: Some(HumanDuration(Duration::from_secs(60))),
                max_messages: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            Policy::of(&config, defaults).max_age,
            Some(Duration::from_secs(60))
        );
    }
}
