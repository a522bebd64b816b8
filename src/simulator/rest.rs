//! The simulator's Tencent REST surface: what Tencent checks before looking
//! at a body (query parameters, the UserSig against the simulator's key),
//! then each command's answer in Tencent's envelope, or the injected fault.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::*;
use crate::attempt::Kind;
use crate::probe::tencent::{command, usersig};
use crate::sync::Locked;

pub(super) fn operation(command_path: &str) -> Option<Kind> {
    match command_path {
        command::ACCOUNT_CHECK => Some(Kind::Login),
        command::SEND_MSG => Some(Kind::SendDirect),
        command::SEND_GROUP_MSG => Some(Kind::SendGroup),
        _ => None,
    }
}

fn envelope_error(code: i64, info: &str) -> Response {
    Json(json!({ "ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info })).into_response()
}

fn envelope_ok(mut extra: Value) -> Response {
    let fields = extra.as_object_mut().expect("an object");
    fields.insert("ActionStatus".into(), json!("OK"));
    fields.insert("ErrorCode".into(), json!(0));
    fields.insert("ErrorInfo".into(), json!(""));
    Json(extra).into_response()
}

#[derive(Deserialize)]
pub(super) struct RestQuery {
    sdkappid: Option<String>,
    identifier: Option<String>,
    usersig: Option<String>,
    random: Option<String>,
    contenttype: Option<String>,
}

/// Checks what Tencent checks before looking at the body.
fn verify_request(q: &RestQuery, now: i64) -> Result<(), (i64, &'static str)> {
    let (Some(app), Some(identifier), Some(sig), Some(random)) =
        (&q.sdkappid, &q.identifier, &q.usersig, &q.random)
    else {
        return Err((
            60004,
            "sdkappid, identifier, usersig and random are required",
        ));
    };
    if q.contenttype.as_deref() != Some("json") {
        return Err((60004, "contenttype must be json"));
    }
    if random.parse::<u32>().is_err() {
        return Err((60004, "random must be a 32-bit unsigned integer"));
    }
    if app.parse::<u64>().ok() != Some(SIMULATOR_SDK_APP_ID) {
        return Err((70020, "SDKAppID not found"));
    }
    let document = usersig::decode(sig).ok_or((70003, "UserSig cannot be decoded"))?;
    if document.sdk_app_id != SIMULATOR_SDK_APP_ID {
        return Err((70014, "SDKAppID in UserSig does not match"));
    }
    if &document.identifier != identifier {
        return Err((70013, "identifier in UserSig does not match the request"));
    }
    let expected = usersig::signature(
        SIMULATOR_SECRET_KEY,
        &document.identifier,
        document.sdk_app_id,
        document.time,
        document.expire,
    );
    if document.sig != expected {
        return Err((70009, "UserSig verification failed"));
    }
    if document.time + document.expire < now {
        return Err((70001, "UserSig expired"));
    }
    if identifier != SIMULATOR_ADMIN {
        return Err((60010, "the request must come from the app administrator"));
    }
    Ok(())
}

pub(super) async fn rest(
    State(shared): State<Arc<Shared>>,
    Path((service, cmd)): Path<(String, String)>,
    Query(query): Query<RestQuery>,
    body: axum::body::Bytes,
) -> Response {
    let command_path = format!("{service}/{cmd}");
    let kind = operation(&command_path);
    if matches!(
        command_path.as_str(),
        command::ADMIN_GET_ROAM_MSG | command::GROUP_MSG_GET_SIMPLE
    ) {
        let behaviour = shared.history_behaviour();
        let stats = |update: &dyn Fn(&mut OperationStats)| {
            update(&mut shared.world.locked().history_stats);
        };
        stats(&|s| s.received += 1);
        if let Some(injected) = inject(&behaviour).await {
            stats(&|s| {
                if behaviour.reset {
                    s.reset += 1
                } else {
                    s.error += 1
                }
            });
            return injected;
        }
        let response = answer(&shared, &command_path, &query, &body, &behaviour);
        let ok = response.is_ok();
        stats(&|s| if ok { s.ok += 1 } else { s.error += 1 });
        return response.unwrap_or_else(|(code, info)| envelope_error(code, &info));
    }
    if let Some(kind) = kind {
        shared.receive(kind);
        let behaviour = shared.behaviour(kind);
        if let Some(injected) = inject(&behaviour).await {
            if behaviour.reset {
                shared.record(kind, |s| s.reset += 1);
            } else {
                shared.count(kind, false);
            }
            return injected;
        }
        let response = answer(&shared, &command_path, &query, &body, &behaviour);
        let ok = response.as_ref().is_ok();
        shared.count(kind, ok);
        return response.unwrap_or_else(|(code, info)| envelope_error(code, &info));
    }
    answer(&shared, &command_path, &query, &body, &Behaviour::healthy())
        .unwrap_or_else(|(code, info)| envelope_error(code, &info))
}

/// The fault a behaviour injects: a reset (a request on a kept-alive
/// connection, past the accept loop's reset, has its response aborted
/// mid-way, which closes the connection), or after its latency a hang, an
/// HTTP status or an error envelope; `None` to answer normally.
async fn inject(behaviour: &Behaviour) -> Option<Response> {
    if behaviour.reset {
        let abort = futures_util::stream::once(async {
            Err::<axum::body::Bytes, _>(std::io::Error::other("simulated reset"))
        });
        return Some(Response::new(axum::body::Body::from_stream(abort)));
    }
    if let Some(ms) = behaviour.latency_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if behaviour.hang {
        // Long past any client's deadline, but not forever: a hung request
        // must not keep its task alive after the client gave up.
        tokio::time::sleep(HANG_FOR).await;
    }
    if let Some(status) = behaviour.http_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some((status, "simulated HTTP failure").into_response());
    }
    behaviour.error_code.map(|code| {
        envelope_error(
            code,
            behaviour.error_info.as_deref().unwrap_or("simulated error"),
        )
    })
}

/// When an accepted send shows in the histories (Unix ms), if ever.
fn visible_at(now_ms: i64, behaviour: &Behaviour) -> Option<i64> {
    (!behaviour.undelivered).then(|| now_ms + behaviour.delivery_delay_ms.unwrap_or(0) as i64)
}

fn answer(
    shared: &Shared,
    command_path: &str,
    query: &RestQuery,
    body: &[u8],
    behaviour: &Behaviour,
) -> Result<Response, (i64, String)> {
    verify_request(query, shared.clock.now().timestamp()).map_err(|(c, i)| (c, i.to_owned()))?;
    let body: Value =
        serde_json::from_slice(body).map_err(|e| (90001, format!("JSON parse error: {e}")))?;
    let mut world = shared.world.locked();
    let text = |v: &Value, field: &str| v[field].as_str().map(str::to_owned);
    match command_path {
        command::ACCOUNT_CHECK => {
            let items = body["CheckItem"]
                .as_array()
                .ok_or((90001, "CheckItem missing".to_owned()))?;
            let results: Vec<Value> = items
                .iter()
                .map(|item| {
                    let user = item["UserID"].as_str().unwrap_or_default();
                    if let Some(code) = behaviour.item_error_code {
                        return json!({ "UserID": user, "ResultCode": code, "ResultInfo": format!("simulated item error {code}") });
                    }
                    let status = if world.accounts.contains(user) { "Imported" } else { "NotImported" };
                    json!({ "UserID": user, "ResultCode": 0, "ResultInfo": "", "AccountStatus": status })
                })
                .collect();
            Ok(envelope_ok(json!({ "ResultItem": results })))
        }
        command::ACCOUNT_IMPORT => {
            let user = text(&body, "UserID").ok_or((70402, "UserID missing".to_owned()))?;
            world.accounts.insert(user);
            Ok(envelope_ok(json!({})))
        }
        command::SEND_MSG => {
            let from =
                text(&body, "From_Account").ok_or((90008, "From_Account missing".to_owned()))?;
            let to = text(&body, "To_Account").ok_or((90003, "To_Account missing".to_owned()))?;
            if !world.accounts.contains(&from) {
                return Err((90008, format!("From_Account {from} not imported")));
            }
            if !world.accounts.contains(&to) {
                return Err((90012, format!("To_Account {to} not imported")));
            }
            let random = body["MsgRandom"]
                .as_u64()
                .ok_or((90005, "MsgRandom missing".to_owned()))?;
            body["MsgBody"]
                .as_array()
                .filter(|b| !b.is_empty())
                .ok_or((90002, "MsgBody missing".to_owned()))?;
            let now = shared.clock.now();
            let key = world.keep_direct(history::Stored {
                from,
                to,
                seq: 0,
                random,
                time: now.timestamp(),
                key: String::new(),
                body: body["MsgBody"].clone(),
                visible_at_ms: visible_at(now.timestamp_millis(), behaviour),
            });
            Ok(envelope_ok(
                json!({ "MsgTime": now.timestamp(), "MsgKey": key }),
            ))
        }
        command::SEND_GROUP_MSG => {
            let group = text(&body, "GroupId").ok_or((10015, "GroupId missing".to_owned()))?;
            let from = text(&body, "From_Account").unwrap_or_default();
            let members = world
                .groups
                .get(&group)
                .ok_or((10010, format!("group {group} does not exist")))?;
            if !members.contains(&from) {
                return Err((10007, format!("{from} is not a member of {group}")));
            }
            let random = body["Random"]
                .as_u64()
                .ok_or((90005, "Random missing".to_owned()))?;
            let now = shared.clock.now();
            // A message dropped for frequency control is not kept.
            let dropped = behaviour
                .drop_reason
                .as_deref()
                .is_some_and(|r| !r.is_empty());
            let seq = world.keep_group(
                &group,
                history::Stored {
                    from,
                    to: group.clone(),
                    seq: 0,
                    random,
                    time: now.timestamp(),
                    key: String::new(),
                    body: body["MsgBody"].clone(),
                    visible_at_ms: visible_at(now.timestamp_millis(), behaviour)
                        .filter(|_| !dropped),
                },
            );
            let mut reply = json!({ "MsgTime": now.timestamp(), "MsgSeq": seq });
            if let Some(reason) = &behaviour.drop_reason {
                reply["MsgDropReason"] = json!(reason);
            }
            Ok(envelope_ok(reply))
        }
        command::CREATE_GROUP => {
            let owner =
                text(&body, "Owner_Account").ok_or((10004, "Owner_Account missing".to_owned()))?;
            let id = match text(&body, "GroupId") {
                Some(id) if id.starts_with("@TGS#") => {
                    return Err((10004, "custom GroupId may not start with @TGS#".into()));
                }
                Some(id) if world.groups.contains_key(&id) => {
                    return Err((10021, format!("GroupId {id} already used")));
                }
                Some(id) => id,
                None => {
                    world.next_group += 1;
                    format!("@TGS#{:08}", world.next_group)
                }
            };
            world.groups.insert(id.clone(), [owner].into());
            Ok(envelope_ok(json!({ "GroupId": id })))
        }
        command::GET_GROUP_INFO => {
            let ids = body["GroupIdList"]
                .as_array()
                .ok_or((10004, "GroupIdList missing".to_owned()))?;
            let infos: Vec<Value> = ids
                .iter()
                .filter_map(Value::as_str)
                .map(|id| match world.groups.get(id) {
                    Some(members) => json!({ "GroupId": id, "ErrorCode": 0, "MemberNum": members.len() }),
                    None => json!({ "GroupId": id, "ErrorCode": 10010, "ErrorInfo": "group does not exist" }),
                })
                .collect();
            Ok(envelope_ok(json!({ "GroupInfo": infos })))
        }
        command::ADD_GROUP_MEMBER => {
            let group = text(&body, "GroupId").ok_or((10015, "GroupId missing".to_owned()))?;
            let accounts: Vec<String> = body["MemberList"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["Member_Account"].as_str().map(str::to_owned))
                .collect();
            let members = world
                .groups
                .get_mut(&group)
                .ok_or((10010, format!("group {group} does not exist")))?;
            // Tencent answers 10013 when every account asked for is already in.
            if !accounts.is_empty() && accounts.iter().all(|a| members.contains(a)) {
                return Err((10013, "the accounts are already group members".to_owned()));
            }
            let results: Vec<Value> = accounts
                .into_iter()
                .map(|a| {
                    let result = if members.insert(a.clone()) { 1 } else { 2 };
                    json!({ "Member_Account": a, "Result": result })
                })
                .collect();
            Ok(envelope_ok(json!({ "MemberList": results })))
        }
        command::ADMIN_GET_ROAM_MSG => {
            let now_ms = shared.clock.now().timestamp_millis();
            world.roam_messages(&body, now_ms).map(envelope_ok)
        }
        command::GROUP_MSG_GET_SIMPLE => {
            let now_ms = shared.clock.now().timestamp_millis();
            world.group_history(&body, now_ms).map(envelope_ok)
        }
        other => Err((60004, format!("unknown command {other}"))),
    }
}
