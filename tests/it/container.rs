//! The image for real (docs/container.md): the repository's `Dockerfile`
//! built with podman on the Debian base `scripts/container-base.sh` makes
//! (no image registry), its runtime stage for real around this build's
//! binary, then run as users run it: uid 10001, read-only root filesystem,
//! config mounted read-only, data in a named volume, against the real local
//! PostgreSQL and once on SQLite in the volume, probing the simulator.
//!
//! A missing podman or base image fails the test (`common::require`).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{TestDb, answered, free_port, wait};
use improbe::simulator::Simulator;
use serde_json::Value;

pub(crate) const BASE_IMAGE: &str = "docker.io/library/debian:bookworm-slim";
/// What podman needs on this kind of machine (docs/container.md).
pub(crate) const RUN_FLAGS: [&str; 7] = [
    "--runtime",
    "runc",
    "--network",
    "host",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
];

pub(crate) fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("podman runs")
}

pub(crate) fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails the test unless podman and the base image are here.
pub(crate) fn require_podman() {
    let have_podman = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    crate::common::require(have_podman, "podman (Debian's podman, runc)");
    crate::common::require(
        podman(&["image", "exists", BASE_IMAGE]).status.success(),
        "the base image scripts/container-base.sh makes",
    );
}

/// Removes what the test made, whatever happens.
pub(crate) struct Cleanup {
    pub(crate) containers: Vec<String>,
    pub(crate) volumes: Vec<String>,
    pub(crate) image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = podman(&["rm", "-f", c]);
        }
        for v in &self.volumes {
            let _ = podman(&["volume", "rm", "-f", v]);
        }
        let _ = podman(&["rmi", "-f", &self.image]);
    }
}

/// Builds the repository's `Dockerfile.binary` around this build's binary
/// (the documented way to package a binary), and returns its size.
fn build_image(tag: &str) -> u64 {
    let context = tempfile::tempdir().unwrap();
    let binary = context.path().join("improbe");
    std::fs::copy(env!("CARGO_BIN_EXE_improbe"), &binary).unwrap();
    let stripped = Command::new("strip").arg(&binary).status();
    assert!(stripped.is_ok_and(|s| s.success()), "strip the binary");
    let binary_size = std::fs::metadata(&binary).unwrap().len();
    let dockerfile = concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile.binary");
    let context = context.path().to_str().unwrap().to_owned();
    let mut args = vec!["build", "--pull=never", "--format", "docker"];
    args.extend(RUN_FLAGS);
    args.extend(["-f", dockerfile, "-t", tag, &context]);
    podman_ok(&args);
    binary_size
}

fn config(database_url: &str, port: u16, endpoint: &str) -> String {
    format!(
        "[prober]\nid = \"container\"\nlisten = \"127.0.0.1:{port}\"\n\
         [database]\nurl = \"{database_url}\"\n\
         [[targets]]\nname = \"sim\"\nprovider = \"simulator\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\
         [targets.simulator]\nendpoint = \"{endpoint}\"\n\
         [targets.sla]\nservice_start = \"2026-01-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n"
    )
}

/// `podman run` as docs/container.md says users run it; returns when `/readyz`
/// answers, with how long that took from the run.
async fn run_container(
    name: &str,
    image: &str,
    config_file: &Path,
    volume: &str,
    port: u16,
) -> Duration {
    let mount = format!("{}:/etc/improbe/improbe.toml:ro", config_file.display());
    let data = format!("{volume}:/var/lib/improbe");
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "--user",
        "10001",
        "--read-only",
    ];
    args.extend(RUN_FLAGS);
    args.extend(["-v", &mount, "-v", &data, image]);
    let started = Instant::now();
    podman_ok(&args);
    wait::until(Duration::from_secs(60), || async {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await;
        if ready.is_ok_and(|r| r.status() == 200) {
            Ok(started.elapsed())
        } else {
            Err(format!("ready: {}", podman_ok(&["logs", name])))
        }
    })
    .await
}

/// SIGTERM through `podman stop`: the container must exit by itself, with
/// status 0, well within the 10 s after which it would be killed.
fn stop_container(name: &str) -> Duration {
    let started = Instant::now();
    podman_ok(&["stop", "-t", "10", name]);
    let took = started.elapsed();
    let code = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", name]);
    assert_eq!(code.trim(), "0", "{}", podman_ok(&["logs", name]));
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    took
}

fn volume_path(volume: &str) -> std::path::PathBuf {
    podman_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume])
        .trim()
        .into()
}

/// Attempts left in the spool inside the volume.
fn spooled(volume: &str) -> u64 {
    let path = volume_path(volume).join("improbe-spool-container.jsonl");
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count() as u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_builds_and_runs_as_a_sidecar_on_postgres_and_on_sqlite() {
    require_podman();
    let db = TestDb::postgres().await;
    let id = std::process::id();
    let image = format!("localhost/improbe:test-{id}");
    let mut cleanup = Cleanup {
        containers: Vec::new(),
        volumes: Vec::new(),
        image: image.clone(),
    };
    let binary_size = build_image(&image);
    let inspect = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}|{{json .Config.Healthcheck}}|{{json .Config.Volumes}}|{{json .Config.Entrypoint}}|{{.Size}}",
        &image,
    ]);
    let fields: Vec<&str> = inspect.trim().split('|').collect();
    assert_eq!(fields[0], "improbe");
    assert!(fields[1].contains("healthcheck"), "{inspect}");
    assert!(fields[2].contains("/var/lib/improbe"), "{inspect}");
    assert_eq!(fields[3], r#"["improbe"]"#);
    let base_size = podman_ok(&["image", "inspect", "--format", "{{.Size}}", BASE_IMAGE]);
    let added = fields[4].parse::<i64>().unwrap() - base_size.trim().parse::<i64>().unwrap();
    eprintln!(
        "image: {} bytes, {added} over the base, of which the binary {binary_size}",
        fields[4]
    );
    // Besides the binary (this test's is a debug build; docs/container.md gives a
    // release build's): certificates, the user, nothing else of size.
    let besides = added - binary_size as i64;
    assert!(besides < 15_000_000, "{besides} bytes besides the binary");
    let mut args = vec!["run", "--rm"];
    args.extend(RUN_FLAGS);
    args.extend([
        "--entrypoint",
        "ls",
        &image,
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    let certificates = podman_ok(&args);
    assert!(certificates.contains("ca-certificates.crt"));

    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // PostgreSQL: the real local server, a database of this test's own.
    let port = free_port();
    let pg_config = dir.path().join("postgres.toml");
    std::fs::write(&pg_config, config(&db.url, port, &sim.endpoint())).unwrap();
    let name = format!("improbe-test-pg-{id}");
    let volume = format!("improbe-test-pg-{id}");
    cleanup.containers.push(name.clone());
    cleanup.volumes.push(volume.clone());
    let ready = run_container(&name, &image, &pg_config, &volume, port).await;
    eprintln!("postgres: ready {ready:?} after podman run");
    let store = db.store().await;
    wait::until(Duration::from_secs(30), || async {
        if store.attempt_count().await.unwrap() >= 6 {
            Ok(())
        } else {
            Err(format!("six attempts: {}", podman_ok(&["logs", &name])))
        }
    })
    .await;
    podman_ok(&["healthcheck", "run", &name]);
    let sla = podman_ok(&["exec", &name, "improbe", "sla"]);
    assert!(sla.contains("sim"), "{sla}");
    let took = stop_container(&name);
    eprintln!("postgres: stopped in {took:?}");
    let stored = store.attempt_count().await.unwrap() as u64;
    assert_eq!(
        stored + spooled(&volume),
        answered(&sim),
        "nothing measured is lost"
    );

    // SQLite in the volume, then a second container on the same volume.
    let before = answered(&sim);
    let port = free_port();
    let sqlite_config = dir.path().join("sqlite.toml");
    std::fs::write(
        &sqlite_config,
        config("sqlite://improbe.db", port, &sim.endpoint()),
    )
    .unwrap();
    let volume = format!("improbe-test-sqlite-{id}");
    cleanup.volumes.push(volume.clone());
    let mut stored_then = 0;
    for round in 0..2 {
        let name = format!("improbe-test-sqlite-{id}-{round}");
        cleanup.containers.push(name.clone());
        let ready = run_container(&name, &image, &sqlite_config, &volume, port).await;
        eprintln!("sqlite: ready {ready:?} after podman run");
        let file = format!(
            "sqlite://{}",
            volume_path(&volume).join("improbe.db").display()
        );
        wait::until(Duration::from_secs(30), || async {
            let store = improbe::store::open(&file).await.unwrap();
            if store.attempt_count().await.unwrap() as u64 >= stored_then + 6 {
                Ok(())
            } else {
                Err(format!(
                    "six more attempts: {}",
                    podman_ok(&["logs", &name])
                ))
            }
        })
        .await;
        podman_ok(&["healthcheck", "run", &name]);
        let sla = podman_ok(&["exec", &name, "improbe", "sla", "--format", "json"]);
        assert!(sla.contains("\"sim\""), "{sla}");
        stop_container(&name);
        let store = improbe::store::open(&file).await.unwrap();
        let stored = store.attempt_count().await.unwrap() as u64;
        // Every attempt of both containers is in the volume's database.
        assert_eq!(
            stored + spooled(&volume),
            answered(&sim) - before,
            "round {round}"
        );
        assert!(stored > stored_then, "round {round}");
        stored_then = stored;
    }
}

/// The deployment files users copy parse, and name only ports, paths,
/// variables and arguments improbe has.
#[test]
fn the_deployment_files_name_only_what_improbe_has() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = |file: &str| -> Vec<Value> {
        let out = Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
            ])
            .arg(root.join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    // The two Dockerfiles make one image: from source, or around a binary.
    let runtime = |text: &str| -> Vec<String> {
        let from = text
            .find("FROM debian:bookworm-slim")
            .expect("the runtime stage");
        text[from..]
            .lines()
            .filter(|l| !l.starts_with("COPY "))
            .map(str::to_owned)
            .collect()
    };
    let packaged = std::fs::read_to_string(root.join("Dockerfile.binary")).unwrap();
    assert_eq!(runtime(&dockerfile), runtime(&packaged));
    // Nothing picks a stage by a build argument, which podman cannot build.
    assert!(!dockerfile.contains("ARG "), "{dockerfile}");
    assert!(dockerfile.contains("--uid 10001"));
    assert!(dockerfile.contains("VOLUME [\"/var/lib/improbe\"]"));
    assert!(dockerfile.contains("ENV IMPROBE_CONFIG=/etc/improbe/improbe.toml"));
    let check_config = |text: &str| {
        // As in the image: the working directory is the data volume.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("improbe.toml");
        std::fs::write(&file, text).unwrap();
        let out = crate::common::improbe_command()
            .arg("--config")
            .arg(&file)
            .args(["check-config", "--offline"])
            .current_dir(dir.path())
            .env("TIM_SECRET_KEY", "a key")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = improbe::config::Config::parse(text, "deploy").unwrap();
        assert_eq!(config.prober.listen.unwrap().port(), 9464);
    };
    let arguments_parse = |args: &[Value]| {
        let args: Vec<&str> = args.iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(args[0], "run");
        let out = crate::common::improbe_command()
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
    };
    let known_variables = ["TIM_SECRET_KEY", "IMPROBE_DATABASE_URL"];

    let kubernetes = yaml("deploy/kubernetes/sidecar.yaml");
    let kind = |k: &str| kubernetes.iter().find(|d| d["kind"] == k).unwrap();
    check_config(kind("ConfigMap")["data"]["improbe.toml"].as_str().unwrap());
    for key in kind("Secret")["stringData"].as_object().unwrap().keys() {
        assert!(known_variables.contains(&key.as_str()), "{key}");
    }
    let pod = &kind("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    let improbe = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "improbe")
        .unwrap();
    arguments_parse(improbe["args"].as_array().unwrap());
    assert_eq!(improbe["ports"][0]["containerPort"], 9464);
    assert_eq!(improbe["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(improbe["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(improbe["readinessProbe"]["httpGet"]["path"], "/readyz");
    let mounts: Vec<&str> = improbe["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/etc/improbe", "/var/lib/improbe"]);

    let compose = &yaml("deploy/compose.yaml")[0];
    let service = &compose["services"]["improbe"];
    arguments_parse(service["command"].as_array().unwrap());
    assert_eq!(service["ports"][0], "9464:9464");
    for key in service["environment"].as_object().unwrap().keys() {
        assert!(known_variables.contains(&key.as_str()), "{key}");
    }
    let volumes: Vec<&str> = service["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let config_mount = volumes[0]
        .strip_suffix(":/etc/improbe/improbe.toml:ro")
        .unwrap();
    check_config(&std::fs::read_to_string(root.join("deploy").join(config_mount)).unwrap());
    assert_eq!(volumes[1], "improbe-data:/var/lib/improbe");
}
