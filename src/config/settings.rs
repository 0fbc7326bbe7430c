//! The settings each module below `config` owns, built from the flags:
//! `config` knows them, they do not know `config`.

use std::time::Duration;

use super::ServeConfig;
use crate::http::front_door::{Limits, fd};

impl ServeConfig {
    pub fn db_timeout(&self) -> Duration {
        Duration::from_millis(self.db_timeout_ms)
    }

    /// Access control settings.
    pub fn auth(&self) -> crate::auth::AuthSettings {
        crate::auth::AuthSettings {
            jwt_secret: self.auth_jwt_secret.clone(),
            jwt_keys: self.auth_jwt_key.clone(),
            jwt_audience: self.auth_jwt_audience.clone(),
            anonymous: self.anonymous,
            revocation_poll: self.auth_revocation_poll.0,
            rate_limit_publish: self.rate_limit_publish,
            rate_limit_burst: self.rate_limit_publish_burst,
            max_streams_per_client: self.max_streams_per_client,
        }
    }

    /// The server-wide retention defaults.
    pub fn retention(&self) -> crate::retention::Defaults {
        crate::retention::Defaults {
            max_age: (!self.retention_max_age.is_zero()).then_some(self.retention_max_age.0),
            max_messages: (self.retention_max_messages > 0).then_some(self.retention_max_messages),
            attempt_log_max_age: (!self.webhooks.attempt_log_max_age.is_zero())
                .then_some(self.webhooks.attempt_log_max_age.0),
        }
    }

    /// The front door's limits. The connection budget comes from the
    /// open-files limit, which this raises to the hard limit where it may.
    pub fn front_door(&self) -> Limits {
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        let open_files = fd::raise_open_files_limit();
        Limits {
            header_timeout: nonzero(self.http_header_timeout.0),
            idle_timeout: nonzero(self.http_idle_timeout.0),
            body_timeout: nonzero(self.http_body_timeout.0),
            max_header_bytes: self.http_max_header_bytes as usize,
            max_connections_per_ip: self.max_connections_per_ip,
            trusted_proxies: self.trusted_proxies.clone(),
            connection_budget: open_files.map(|f| fd::connection_budget(f.limit)),
            open_files,
        }
    }
}
