//! writ-pg-harness runs a private PostgreSQL cluster from the machine's own binaries, for
//! `make run` and for the tests: `initdb` into a directory, a server on 127.0.0.1 on a free port,
//! wait until it accepts connections, stop it on drop. It never touches a cluster it did not create
//! and never listens beyond loopback.
//!
//! When started as root (containers, CI), PostgreSQL refuses to run, so the cluster's directory is
//! handed to an unprivileged account and both `initdb` and `postgres` run as that account.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The superuser created by `initdb` in a private cluster.
pub const SUPERUSER: &str = "writ";

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "no PostgreSQL server binaries found (looked for `{0}` on PATH and under /usr/lib/postgresql/*/bin); install PostgreSQL"
    )]
    BinariesNotFound(&'static str),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("PostgreSQL did not accept connections within {0:?}; see {1}")]
    StartTimeout(Duration, PathBuf),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the PostgreSQL server programs live.
fn bin_dir() -> Result<PathBuf, HarnessError> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            // Follow links (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) to the
            // directory holding the whole set of server programs.
            if let Ok(real) = dir.join("initdb").canonicalize()
                && let Some(real_dir) = real.parent()
                && real_dir.join("postgres").is_file()
            {
                return Ok(real_dir.to_path_buf());
            }
        }
    }
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    // The newest major version wins.
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().ok_or(HarnessError::BinariesNotFound("initdb"))
}

/// The account the cluster runs as when we are root: PostgreSQL refuses to run as root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

fn run_as() -> Option<RunAs> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: checked non-null above.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Some(RunAs { uid, gid });
        }
    }
    Some(RunAs {
        uid: 65534,
        gid: 65534,
    })
}

fn chown_tree(path: &Path, who: RunAs) -> Result<(), HarnessError> {
    std::os::unix::fs::chown(path, Some(who.uid), Some(who.gid)).map_err(io_err(path))?;
    if path.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err(path))? {
            let entry = entry.map_err(io_err(path))?;
            chown_tree(&entry.path(), who)?;
        }
    }
    Ok(())
}

fn command(program: &Path, who: Option<RunAs>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LC_ALL", "C").env("TZ", "UTC");
    if let Some(who) = who {
        cmd.uid(who.uid).gid(who.gid).env_remove("HOME");
    }
    cmd
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err(Path::new("127.0.0.1:0")))?;
    let port = listener
        .local_addr()
        .map_err(io_err(Path::new("127.0.0.1:0")))?
        .port();
    Ok(port)
}

/// A PostgreSQL cluster in a private directory, served on 127.0.0.1.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    durability: Durability,
    who: Option<RunAs>,
    server: Option<ServerHandle>,
}

/// The running postmaster. It is spawned from a thread that lives as long as the process, so the
/// kernel's parent-death signal (which follows the spawning *thread*) reaches the server only when
/// this whole process dies: a crashed test run leaves no stray server behind.
pub struct ServerHandle {
    pid: libc::pid_t,
    exited: mpsc::Receiver<()>,
}

impl ServerHandle {
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Whether the process has exited since it was spawned.
    pub fn has_exited(&self) -> bool {
        self.exited.try_recv().is_ok()
    }
}

/// Whether a cluster's writes survive a crash of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// PostgreSQL's defaults: what `make run` keeps under `.writ/` outlives a power cut.
    Durable,
    /// No `fsync`: for throwaway clusters (tests, benchmarks), which a crash loses anyway.
    Scratch,
}

impl Cluster {
    /// Opens the cluster in `dir`, running `initdb` first when the directory holds none.
    pub fn open(dir: impl Into<PathBuf>, durability: Durability) -> Result<Self, HarnessError> {
        let dir = dir.into();
        let bin = bin_dir()?;
        let who = run_as();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let dir = dir.canonicalize().map_err(io_err(&dir))?;
        let data = dir.join("data");
        if !data.join("PG_VERSION").is_file() {
            if let Some(who) = who {
                allow_traverse(&dir);
                chown_tree(&dir, who)?;
            }
            let mut initdb = command(&bin.join("initdb"), who);
            initdb
                .arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"]);
            if durability == Durability::Scratch {
                initdb.arg("--no-sync");
            }
            let out = initdb.output().map_err(io_err(&bin.join("initdb")))?;
            if !out.status.success() {
                return Err(HarnessError::Command {
                    what: "initdb".into(),
                    detail: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
        }
        Ok(Self {
            dir,
            bin,
            port: 0,
            durability,
            who,
            server: None,
        })
    }

    /// Starts the server on a free loopback port (the same port again after a `stop`).
    pub fn start(&mut self) -> Result<(), HarnessError> {
        if self.server.is_some() {
            return Ok(());
        }
        if self.port == 0 {
            self.port = free_port()?;
        }
        let log_path = self.dir.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        if let Some(who) = self.who {
            std::os::unix::fs::chown(&log_path, Some(who.uid), Some(who.gid))
                .map_err(io_err(&log_path))?;
        }
        let log_err = log.try_clone().map_err(io_err(&log_path))?;
        let mut cmd = command(&self.bin.join("postgres"), self.who);
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=128MB"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if self.durability == Durability::Scratch {
            cmd.args(["-c", "fsync=off"]);
        }
        // A process group of its own: Ctrl-C in a terminal reaches `writ dev`, which drains and
        // then stops the server, instead of reaching both at once.
        cmd.process_group(0);
        // SIGINT is PostgreSQL's fast shutdown.
        let server = spawn_tied(cmd, libc::SIGINT).map_err(io_err(&self.bin.join("postgres")))?;
        self.server = Some(server);
        self.wait_ready(Duration::from_secs(30), &log_path)
    }

    fn wait_ready(&mut self, limit: Duration, log: &Path) -> Result<(), HarnessError> {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while started.elapsed() < limit {
            if let Some(server) = &self.server
                && server.exited.try_recv().is_ok()
            {
                self.server = None;
                let tail = fs::read_to_string(log).unwrap_or_default();
                return Err(HarnessError::Command {
                    what: "postgres".into(),
                    detail: tail.lines().rev().take(5).collect::<Vec<_>>().join("\n"),
                });
            }
            if accepts_startup(addr) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(30));
        }
        Err(HarnessError::StartTimeout(limit, log.to_path_buf()))
    }

    /// Stops the server (fast shutdown) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(server.pid, libc::SIGINT) };
            let _ = server.exited.recv_timeout(Duration::from_secs(30));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A connection URL for `database` as the cluster's superuser.
    pub fn url(&self, database: &str) -> String {
        self.url_as(SUPERUSER, database)
    }

    /// A connection URL for `database` as `user` (the cluster trusts loopback: no password).
    pub fn url_as(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Root-owned temp directories are often 0700; the unprivileged server must reach its own dir.
fn allow_traverse(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut cur = dir.parent();
    while let Some(p) = cur {
        if let Ok(meta) = fs::metadata(p) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(mode | 0o001));
            }
        }
        cur = p.parent();
    }
}

/// A server accepts connections once it answers an SSL request with a single byte.
fn accepts_startup(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // SSLRequest: length 8, code 80877103. A server still starting closes the connection instead.
    if stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .is_err()
    {
        return false;
    }
    let mut reply = [0u8; 1];
    if !matches!(stream.read(&mut reply), Ok(1)) {
        return false;
    }
    // A "starting up" server still accepts the TCP connection; confirm with a real startup packet.
    drop(stream);
    startup_ok(addr)
}

/// Sends a startup message for the superuser and checks that authentication succeeds rather than
/// "the database system is starting up".
fn startup_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1000)));
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes()); // protocol 3.0
    for (k, v) in [("user", SUPERUSER), ("database", "postgres")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    if stream.write_all(&msg).is_err() {
        return false;
    }
    let mut tag = [0u8; 1];
    // 'R' is an authentication message (trust auth answers AuthenticationOk); 'E' is an error.
    matches!(stream.read(&mut tag), Ok(1)) && tag[0] == b'R'
}

/// Spawns a helper server (PostgreSQL, or another test peer) that receives `death_signal` when
/// this process dies, however it dies. It is spawned from a thread that never exits (see
/// [`ServerHandle`]), because the parent-death signal follows the spawning thread.
pub fn spawn_tied(mut cmd: Command, death_signal: libc::c_int) -> std::io::Result<ServerHandle> {
    // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec, after
    // any uid change (which would otherwise clear it).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    spawn_from_keeper(cmd)
}

fn spawn_from_keeper(cmd: Command) -> std::io::Result<ServerHandle> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        // The sender lives in this static, so the loop (and the thread) lasts as long as the process.
        let _ = thread::Builder::new()
            .name("pg-keeper".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        std::sync::Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .lock()
        .map_err(|_| std::io::Error::other("keeper poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("keeper thread gone"))?;
    let mut child = reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("keeper thread gone"))??;
    let pid = child.id() as libc::pid_t;
    let (exited_tx, exited) = mpsc::channel();
    thread::spawn(move || {
        let _ = child.wait();
        let _ = exited_tx.send(());
    });
    Ok(ServerHandle { pid, exited })
}
