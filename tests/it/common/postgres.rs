//! PostgreSQL servers of a test's own: a private cluster (`initdb`, `pg_ctl`)
//! that a test may stop, or give TLS and its own `pg_hba.conf`; and a
//! PgBouncer in front of a server. Both run as the `postgres` user, so the
//! tests that use them need root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PostgreSQL server of our own, so stopping it disturbs no other test.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// What a private server runs with beyond `initdb`'s defaults.
#[derive(Default)]
pub struct ServerSettings {
    /// Lines added to `postgresql.conf`.
    pub conf: Vec<String>,
    /// `pg_hba.conf` in place of `initdb`'s (which trusts everyone).
    pub hba: Option<String>,
    /// Files copied into the data directory, readable by the server only
    /// (a TLS key must be): (source, name there).
    pub files: Vec<(PathBuf, &'static str)>,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        Self::start_with(ServerSettings::default())
    }

    pub fn start_with(settings: ServerSettings) -> PrivatePostgres {
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql");
        let bin = versions
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb in /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let port = crate::common::free_port();
        let pg = PrivatePostgres { dir, bin, port };
        chown_to_postgres(pg.dir.path());
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let data = PathBuf::from(pg.data());
        for (source, name) in &settings.files {
            let target = data.join(name);
            std::fs::copy(source, &target).unwrap();
            chown_to_postgres(&target);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        if !settings.conf.is_empty() {
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).unwrap();
            text.push('\n');
            text.push_str(&settings.conf.join("\n"));
            text.push('\n');
            std::fs::write(&conf, text).unwrap();
        }
        if let Some(hba) = &settings.hba {
            std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        }
        pg.ctl("start");
        pg
    }

    pub fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_postgres(&self, program: &str, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// [`PrivatePostgres::ctl`] off the async runtime's threads.
    pub async fn ctl_async(self, action: &'static str) -> PrivatePostgres {
        tokio::task::spawn_blocking(move || {
            self.ctl(action);
            self
        })
        .await
        .unwrap()
    }

    pub fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        self.as_postgres(
            "pg_ctl",
            &[
                "-D", &data, "-w", "-l", &log, "-m", "fast", "-o", &options, action,
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

fn chown_to_postgres(path: &Path) {
    assert!(
        Command::new("chown")
            .args(["postgres:", &path.display().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Debian's PgBouncer in front of the server at `127.0.0.1:server_port`,
/// in `mode` (`session` or `transaction`), with nothing else set beyond
/// what it needs to run here: no `ignore_startup_parameters`.
pub struct PgBouncer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl PgBouncer {
    /// `server_connections`: PgBouncer's `default_pool_size`, the server
    /// connections all clients share.
    pub fn start(server_port: u16, mode: &str, server_connections: u32) -> PgBouncer {
        let dir = tempfile::tempdir().unwrap();
        chown_to_postgres(dir.path());
        let port = crate::common::free_port();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").unwrap();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={server_port}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\npool_mode = {mode}\n\
                 default_pool_size = {server_connections}\nmax_client_conn = 200\n\
                 logfile = {log}\n",
                users = users.display(),
                log = dir.path().join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        for file in [&users, &ini] {
            chown_to_postgres(file);
        }
        // setpriv runs PgBouncer itself (it will not run as root), so the
        // child is PgBouncer and stopping it stops PgBouncer.
        let child = Command::new("setpriv")
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "pgbouncer",
            ])
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer (scripts/test.sh installs Debian's)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "PgBouncer did not listen on {port}: {}",
                std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        PgBouncer {
            child,
            _dir: dir,
            port,
        }
    }

    /// `url` (a database on the server behind) through this PgBouncer.
    pub fn url_for(&self, url: &str) -> String {
        let (_, database) = url.rsplit_once('/').expect("a URL names its database");
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
