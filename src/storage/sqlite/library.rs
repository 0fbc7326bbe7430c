//! Process-wide settings of the SQLite library, made once before the first
//! connection opens (SQLite refuses them after it has initialised).
//!
//! **No memory statistics.** By default SQLite counts every allocation
//! under one global mutex, which all its connections share. herald's
//! writer and reader connections each run on a thread of their own, so
//! under load they queued on that mutex at every value they copied out and
//! every page they cached: in a profile of a pull-subscription drain, the
//! futex wake-ups of that mutex took 8 % of the CPU, on the writer's
//! thread, which is the one that bounds the drain. herald never reads the
//! statistics (`sqlite3_memory_used`).

use std::sync::Once;

use libsqlite3_sys::{SQLITE_CONFIG_MEMSTATUS, SQLITE_OK, sqlite3_config};

/// Applies the settings, once per process; later calls do nothing.
pub fn configure() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. Called before
        // any connection exists (or refused with SQLITE_MISUSE if the
        // library was initialised already, which changes nothing).
        let rc = unsafe { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
        if rc != SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialised already; memory statistics stay on"
            );
        }
    });
}
