//! `improbe setup` for Tencent: imports the probe accounts and creates the
//! probe group with both as members, idempotently.

use std::sync::Arc;

use serde_json::{Value, json};

use super::settings::TencentSettings;
use super::{TencentClient, classify_reply, command};
use crate::clock::SystemClock;

/// `add_group_member`: every account asked for is already a member.
const ALREADY_A_MEMBER: i64 = 10013;
/// How long one setup request may take.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Prepares one target's app and says what was done, and what to put in
/// the config.
pub async fn setup(settings: &TencentSettings) -> anyhow::Result<Vec<String>> {
    let group = setup_app(settings).await?;
    let mut report = vec![format!(
        "accounts {} and {} imported; group {group} holds both",
        settings.sender, settings.recipient
    )];
    if group != settings.group {
        report.push(format!(
            "Tencent assigned the group ID {group}: set group = \"{group}\" in [targets.tencent]"
        ));
    }
    if settings.confirm_delivery {
        check_histories(settings, &group).await?;
        report.push(format!(
            "{} can read {}'s one-to-one history and {group}'s history: delivery is confirmed",
            settings.admin, settings.recipient
        ));
    }
    Ok(report)
}

/// Reads both histories once, as the delivery watcher will, so a refusal
/// shows now rather than as sends that stay unconfirmed.
async fn check_histories(settings: &TencentSettings, group: &str) -> anyhow::Result<()> {
    let client = TencentClient::new(settings, Arc::new(SystemClock))?;
    let now = chrono::Utc::now().timestamp();
    let direct = json!({
        "Operator_Account": settings.recipient, "Peer_Account": settings.sender,
        "MaxCnt": 1, "MinTime": now - 3_600, "MaxTime": now,
    });
    let group_read = json!({ "GroupId": group, "ReqMsgNumber": 1 });
    for (command, body) in [
        (command::ADMIN_GET_ROAM_MSG, direct),
        (command::GROUP_MSG_GET_SIMPLE, group_read),
    ] {
        call(&client, command, body).await.map_err(|e| {
            anyhow::anyhow!(
                "{e}; delivery cannot be confirmed without reading this history: \
                 give {} the right to, or set confirm_delivery = false",
                settings.admin
            )
        })?;
    }
    Ok(())
}

/// Imports the probe accounts and makes sure the probe group exists with both
/// as members. Returns the group's ID (a new one if Tencent assigned it).
pub async fn setup_app(settings: &TencentSettings) -> anyhow::Result<String> {
    let client = TencentClient::new(settings, Arc::new(SystemClock))?;
    for user in [&settings.sender, &settings.recipient] {
        call(
            &client,
            command::ACCOUNT_IMPORT,
            json!({ "UserID": user, "Nick": "improbe probe" }),
        )
        .await?;
    }
    let info = call(
        &client,
        command::GET_GROUP_INFO,
        json!({ "GroupIdList": [settings.group] }),
    )
    .await?;
    let exists = info["GroupInfo"][0]["ErrorCode"].as_i64() == Some(0);
    let group = if exists {
        settings.group.clone()
    } else {
        // IDs starting with @TGS# are Tencent's own: let it assign one.
        let mut request =
            json!({ "Owner_Account": settings.sender, "Type": "Public", "Name": "improbe probes" });
        if !settings.group.starts_with("@TGS#") {
            request["GroupId"] = json!(settings.group);
        }
        let created = call(&client, command::CREATE_GROUP, request).await?;
        created["GroupId"]
            .as_str()
            .unwrap_or(&settings.group)
            .to_owned()
    };
    let members =
        json!([{ "Member_Account": settings.sender }, { "Member_Account": settings.recipient }]);
    call_accepting(
        &client,
        command::ADD_GROUP_MEMBER,
        json!({ "GroupId": group, "Silence": 1, "MemberList": members }),
        &[ALREADY_A_MEMBER],
    )
    .await?;
    Ok(group)
}

async fn call(client: &TencentClient, command: &str, body: Value) -> anyhow::Result<Value> {
    call_accepting(client, command, body, &[]).await
}

/// Calls a setup command; an error code in `done` means what was asked for is
/// already so, which for an idempotent setup is success.
async fn call_accepting(
    client: &TencentClient,
    command: &str,
    body: Value,
    done: &[i64],
) -> anyhow::Result<Value> {
    let reply = tokio::time::timeout(SETUP_TIMEOUT, client.call(command, &body, false))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{command}: no answer within {}s; check the endpoint and network",
                SETUP_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| anyhow::anyhow!("{command}: {e}"))?;
    let outcome = classify_reply(&reply);
    let code = outcome
        .error_code
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok());
    if code.is_some_and(|c| done.contains(&c)) {
        return Ok(reply.value());
    }
    if outcome.outcome != crate::attempt::Outcome::Ok {
        anyhow::bail!(
            "{command} failed: HTTP {}, ErrorCode {}, {}",
            reply.status,
            outcome.error_code.unwrap_or_default(),
            outcome.error.unwrap_or_default()
        );
    }
    Ok(reply.value())
}
