//! `improbe healthcheck`: asks a running daemon's `/healthz`, for container
//! HEALTHCHECKs in images that carry no curl.

use std::path::Path;
use std::time::Duration;

use super::load_config;

/// How long the daemon may take to answer.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(config_path: &Path, url: Option<&str>) -> anyhow::Result<()> {
    // Asking our own listener: with TLS on, its certificate is for the names
    // clients use, not for the listen address, and liveness is all we check.
    let mut own_listener = false;
    let url = match url {
        Some(url) => url.to_owned(),
        None => {
            let config = load_config(config_path)?;
            let listen = config.prober.listen.ok_or_else(|| {
                anyhow::anyhow!(
                    "[prober] listen is not set in {}; set it or pass --url",
                    config_path.display()
                )
            })?;
            own_listener = true;
            let scheme = if config.prober.web.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{listen}/healthz")
        }
    };
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "--url `{url}` is not an http:// URL such as http://127.0.0.1:9464/healthz"
    );
    let client = reqwest::Client::builder()
        .timeout(HEALTHCHECK_TIMEOUT)
        .danger_accept_invalid_certs(own_listener)
        .build()?;
    let response = client.get(&url).send().await.map_err(|e| {
        anyhow::anyhow!(
            "{url} did not answer ({}); is `improbe run` running with [prober] listen set?",
            crate::probe::describe(&e.without_url())
        )
    })?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: HTTP {}",
        response.status()
    );
    println!("{url}: ok");
    Ok(())
}
