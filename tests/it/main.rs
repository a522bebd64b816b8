//! The integration tests, one binary: every module links the crate once
//! (docs/layout.md "Tests"). Modules are named after what they exercise;
//! `slow::slow_*` are the few that need real wall-clock minutes.

/// One test per backend from each `async fn NAME(db: TestDb)`:
/// `on_sqlite::NAME` and `on_postgres::NAME`, so that a failure names its
/// backend and one backend's failure does not hide the other's. Once per
/// module, with one runtime flavor for its tests.
#[macro_export]
macro_rules! on_both_backends {
    (flavor = $flavor:literal; $($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = $flavor)]
                async fn $name() {
                    super::$name($crate::common::TestDb::sqlite()).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = $flavor)]
                async fn $name() {
                    super::$name($crate::common::TestDb::postgres().await).await
                }
            )*
        }
    };
}

mod common;

mod alert_rules;
mod bad_input;
mod cli;
mod container;
mod daemon;
mod faults;
mod http_providers;
mod matrix;
mod no_panic;
mod notify;
mod pg_network;
mod probers;
mod regions;
mod report;
mod schedule;
mod slow;
mod storage;
mod store_contract;
mod tencent_delivery;
mod tencent_simulator;
mod xmpp;
