//! Open files: at start-up the soft limit is raised to the hard one (where
//! the OS allows) and logged, and a share of it is kept back from client
//! connections, so that near the limit herald still has descriptors for
//! its database, for health checks, and for answering "not now".

/// The open-files limit, as raised at start-up.
#[derive(Debug, Clone, Copy)]
pub struct OpenFiles {
    pub limit: u64,
    pub soft_before: u64,
    pub hard: u64,
}

impl OpenFiles {
    /// Logged after the line that says where herald listens (a newcomer's
    /// first line is the address).
    pub fn log(&self) {
        tracing::info!(
            open_files = self.limit,
            soft_before = self.soft_before,
            hard = self.hard,
            client_connections = connection_budget(self.limit),
            "open files limit"
        );
    }
}

/// The open-files limit after raising the soft limit to the hard one, or
/// `None` where it cannot be read.
pub fn raise_open_files_limit() -> Option<OpenFiles> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Some(OpenFiles {
        limit: lim.rlim_cur,
        soft_before: before,
        hard: lim.rlim_max,
    })
}

/// Client connections allowed in full with `limit` descriptors: the rest
/// (a twentieth, at least 64) is kept for the database, the listener, log
/// files, and connections answered only for health checks.
pub fn connection_budget(limit: u64) -> usize {
    let reserve = (limit / 20).max(64);
    limit.saturating_sub(reserve).max(1) as usize
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_share_of_descriptors_is_kept_back() {
        assert_eq!(super::connection_budget(20_000), 19_000);
        assert_eq!(super::connection_budget(1024), 960);
        assert_eq!(super::connection_budget(10), 1);
    }
}
