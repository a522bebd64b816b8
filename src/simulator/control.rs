//! The simulator's control API: inject behaviours now or by minute, reset,
//! and read what was answered.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::*;
use crate::attempt::Kind;
use crate::minute::Minute;
use crate::sync::Locked;

pub(super) async fn set_behaviour(
    State(shared): State<Arc<Shared>>,
    Path(operation): Path<String>,
    Json(behaviour): Json<Behaviour>,
) -> Response {
    let kinds: Vec<Kind> = match operation.as_str() {
        "all" => Kind::ALL.to_vec(),
        "history" => {
            shared.world.locked().history_behaviour = behaviour;
            return StatusCode::NO_CONTENT.into_response();
        }
        other => match other.parse() {
            Ok(kind) => vec![kind],
            Err(e) => {
                return (StatusCode::NOT_FOUND, format!("{e}, all or history")).into_response();
            }
        },
    };
    let mut world = shared.world.locked();
    for kind in kinds {
        world.behaviours.insert(kind, behaviour.clone());
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn set_schedule(
    State(shared): State<Arc<Shared>>,
    Json(phases): Json<Vec<Phase>>,
) -> Response {
    let mut world = shared.world.locked();
    for phase in phases {
        world
            .schedule
            .insert(Minute::containing(&phase.minute), phase);
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn reset_all(State(shared): State<Arc<Shared>>) -> Response {
    let mut world = shared.world.locked();
    world.behaviours.clear();
    world.schedule.clear();
    world.history_behaviour = Behaviour::healthy();
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let world = shared.world.locked();
    let mut by_name: HashMap<&str, &OperationStats> =
        world.stats.iter().map(|(k, v)| (k.as_str(), v)).collect();
    by_name.insert("history", &world.history_stats);
    Json(json!(by_name)).into_response()
}
