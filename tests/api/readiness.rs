//! `/readyz` answers 503 while the database refuses writes, by mechanisms
//! that stop root too (tests run as root, so file modes would not): an
//! immutable SQLite file, a full file system, a read-only Postgres
//! database. A locked database is in `errors.rs`, a Postgres that refuses
//! connections in `cluster.rs`. Each comes back to 200 without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app_with};

crate::on_both_backends!(a_database_that_refuses_writes_is_not_ready_until_it_takes_them_again);

async fn ready(app: &TestApp) -> u16 {
    app.get("/readyz").await.status().as_u16()
}

async fn until_ready_is(app: &TestApp, status: u16) {
    eventually(&format!("/readyz to answer {status}"), || async {
        (ready(app).await == status).then_some(())
    })
    .await;
}

async fn a_database_that_refuses_writes_is_not_ready_until_it_takes_them_again(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db.clone(), &["--db-timeout-ms", "300"]).await;
    app.publish_text("t", "before").await;
    assert_eq!(ready(&app).await, 200);
    match db.postgres_names() {
        Some((admin, name)) => {
            let (admin, name) = (admin.to_owned(), name.to_owned());
            read_only_postgres(&admin, &name, true).await;
            until_ready_is(&app, 503).await;
            let r = app.post("/topics/t", None, "during").await;
            assert_eq!(r.status(), 503, "a publish is refused too");
            read_only_postgres(&admin, &name, false).await;
        }
        None => {
            let file = PathBuf::from(db.url.trim_start_matches("sqlite://"));
            let Some(_immutable) = Immutable::set(&file) else {
                eprintln!("skipped: chattr +i is not permitted here");
                return;
            };
            until_ready_is(&app, 503).await;
            let r = app.post("/topics/t", None, "during").await;
            assert_eq!(r.status(), 503, "a publish is refused too");
        }
    }
    until_ready_is(&app, 200).await;
    assert_eq!(app.publish_text("t", "after").await.seq, 2);
    app.stop().await;
}

/// Sets or resets `default_transaction_read_only` on the database and
/// ends herald's sessions, so that its next ones start read-only (or not).
pub async fn read_only_postgres(admin: &str, name: &str, on: bool) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    let set = if on {
        format!("ALTER DATABASE {name} SET default_transaction_read_only = on")
    } else {
        format!("ALTER DATABASE {name} RESET default_transaction_read_only")
    };
    sqlx::query(sqlx::AssertSqlSafe(set))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

/// The SQLite file and its WAL made immutable (`chattr +i`, which stops
/// root, even through descriptors already open); undone when dropped.
pub struct Immutable(Vec<PathBuf>);

impl Immutable {
    pub fn set(db: &Path) -> Option<Immutable> {
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        let files = vec![db.to_owned(), wal];
        let ok = Command::new("chattr")
            .arg("+i")
            .args(&files)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Immutable(files))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

/// A small tmpfs mounted for one test, unmounted when dropped.
pub struct SmallDisk(pub tempfile::TempDir);

impl SmallDisk {
    pub fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }

    /// Fills the disk with one file, returning its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_is_not_ready_until_space_is_freed() {
    let Some(disk) = SmallDisk::mount(32) else {
        eprintln!("skipped: mounting a tmpfs is not permitted here");
        return;
    };
    let db = TestDb::sqlite_at(&disk.0.path().join("herald.db"));
    let app = spawn_app_with(db, &["--db-timeout-ms", "300"]).await;
    app.publish_text("t", "before").await;
    assert_eq!(ready(&app).await, 200);
    let filler = disk.fill();
    until_ready_is(&app, 503).await;
    let body: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("full"), "{body}");
    let r = app.post("/topics/t", None, "x".repeat(256 * 1024)).await;
    assert_eq!(r.status(), 503, "a publish is refused too");
    std::fs::remove_file(filler).unwrap();
    until_ready_is(&app, 200).await;
    assert_eq!(app.publish_text("t", "after").await.seq, 2);
    app.stop().await;
}
