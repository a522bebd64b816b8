//! `improbe setup` for Matrix: a direct room and a private group room, both
//! holding the probing account and the recipient, idempotently. The rooms
//! are remembered in the probing account's data, so a second run finds them.

use std::collections::HashSet;

use reqwest::Method;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::client::{CallError, MatrixClient, escape};
use super::settings::MatrixSettings;

/// Where `setup` remembers the rooms it made, in the account's data.
const REMEMBERED: &str = "org.improbe.setup";
const SETUP_DEVICE: &str = "improbe-setup";

pub async fn setup(settings: &MatrixSettings) -> anyhow::Result<Vec<String>> {
    let clients = crate::probe::HttpClients::shared()?;
    let api = MatrixClient::new(clients.pooled.clone(), settings.api_base());
    let password = settings.password.reveal()?;
    let token = api
        .login(&settings.user, &password, SETUP_DEVICE)
        .await
        .map_err(|e| step("sign in as the probing account", e))?;
    let result = prepare(&api, &token, settings).await;
    let _ = api.logout(&token).await;
    result
}

async fn prepare(
    api: &MatrixClient,
    token: &str,
    settings: &MatrixSettings,
) -> anyhow::Result<Vec<String>> {
    let user = escape(&settings.user);
    let remembered = match api
        .call(
            Method::GET,
            &format!("/user/{user}/account_data/{REMEMBERED}"),
            Some(token),
            None,
            None,
        )
        .await
    {
        Ok(value) => value,
        Err(e) if e.errcode() == Some("M_NOT_FOUND") => json!({}),
        Err(e) => return Err(step("read the remembered rooms", e)),
    };
    let joined: HashSet<String> = api
        .call::<Value>(Method::GET, "/joined_rooms", Some(token), None, None)
        .await
        .map_err(|e| step("list the joined rooms", e))?["joined_rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();

    let mut report = Vec::new();
    let mut rooms = Vec::new();
    for (role, configured, direct) in [
        ("direct_room", &settings.direct_room, true),
        ("group_room", &settings.group_room, false),
    ] {
        let known = [configured.as_deref(), remembered[role].as_str()]
            .into_iter()
            .flatten()
            .find(|room| joined.contains(*room))
            .map(str::to_owned);
        let room = match known {
            Some(room) => room,
            None => {
                let room = create_room(api, token, settings, direct).await?;
                report.push(format!("created {role} {room}"));
                room
            }
        };
        rooms.push(room);
    }
    let [direct_room, group_room] = [rooms[0].clone(), rooms[1].clone()];
    api.call::<IgnoredAny>(
        Method::PUT,
        &format!("/user/{user}/account_data/{REMEMBERED}"),
        Some(token),
        Some(&json!({ "direct_room": direct_room, "group_room": group_room })),
        None,
    )
    .await
    .map_err(|e| step("remember the rooms", e))?;

    if let (Some(recipient), Some(secret)) = (&settings.recipient, &settings.recipient_password) {
        let rx_token = api
            .login(recipient, &secret.reveal()?, SETUP_DEVICE)
            .await
            .map_err(|e| step("sign in as the recipient", e))?;
        let joined = join_recipient(
            api,
            token,
            &rx_token,
            recipient,
            &[&direct_room, &group_room],
        )
        .await;
        let _ = api.logout(&rx_token).await;
        joined?;
        report.push(format!("{recipient} is in both rooms"));
    }
    report.insert(
        0,
        format!("direct_room = \"{direct_room}\", group_room = \"{group_room}\""),
    );
    if settings.direct_room.as_deref() != Some(&direct_room)
        || settings.group_room.as_deref() != Some(&group_room)
    {
        report.push(format!(
            "put these in [targets.matrix]: direct_room = \"{direct_room}\" and group_room = \"{group_room}\""
        ));
    }
    Ok(report)
}

async fn create_room(
    api: &MatrixClient,
    token: &str,
    settings: &MatrixSettings,
    direct: bool,
) -> anyhow::Result<String> {
    let invite: Vec<&String> = settings.recipient.iter().collect();
    let body = if direct {
        json!({ "preset": "trusted_private_chat", "is_direct": true, "invite": invite, "name": "improbe direct probe" })
    } else {
        json!({ "preset": "private_chat", "invite": invite, "name": "improbe group probe" })
    };
    let answer = api
        .call::<Value>(Method::POST, "/createRoom", Some(token), Some(&body), None)
        .await
        .map_err(|e| step("create a room", e))?;
    answer["room_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("createRoom answered without room_id"))
}

/// Makes the recipient a member of each room: invited by the probing
/// account where it is not (again, if it had left), then joined.
async fn join_recipient(
    api: &MatrixClient,
    token: &str,
    rx_token: &str,
    recipient: &str,
    rooms: &[&String],
) -> anyhow::Result<()> {
    for room in rooms {
        let members: Value = api
            .call(
                Method::GET,
                &format!("/rooms/{}/joined_members", escape(room)),
                Some(token),
                None,
                None,
            )
            .await
            .map_err(|e| step("list the room's members", e))?;
        if members["joined"].get(recipient).is_some() {
            continue;
        }
        // Already invited is fine: the join below settles it.
        let _ = api
            .call::<IgnoredAny>(
                Method::POST,
                &format!("/rooms/{}/invite", escape(room)),
                Some(token),
                Some(&json!({ "user_id": recipient })),
                None,
            )
            .await;
        api.call::<IgnoredAny>(
            Method::POST,
            &format!("/join/{}", escape(room)),
            Some(rx_token),
            Some(&json!({})),
            None,
        )
        .await
        .map_err(|e| step("join the recipient", e))?;
    }
    Ok(())
}

fn step(doing: &str, error: CallError) -> anyhow::Error {
    anyhow::anyhow!("cannot {doing}: {error}")
}
