//! `improbe simulate --listen ADDR`: the IM simulator alone.

use std::net::SocketAddr;

use crate::simulator::Simulator;

pub async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let simulator = Simulator::start(listen).await?;
    println!(
        "IM simulator (Tencent Cloud IM REST surface) on {}",
        simulator.endpoint()
    );
    println!(
        "Probe it with a target like:\n\n[[targets]]\nname = \"sim\"\nprovider = \"simulator\"\n[targets.simulator]\nendpoint = \"{}\"\n",
        simulator.endpoint()
    );
    println!("Control API (JSON bodies):");
    println!(
        "  PUT  /control/behaviour/{{login|send_direct|send_group|all}}  {{\"error_code\":70500}} {{\"http_status\":503}} {{\"latency_ms\":800}} {{\"hang\":true}} {{\"reset\":true}} {{}}"
    );
    println!(
        "  PUT  /control/schedule   [{{\"minute\":\"2026-04-01T12:03:00Z\",\"login\":{{\"http_status\":503}},\"send_direct\":{{...}},\"send_group\":{{...}}}}]"
    );
    println!("  POST /control/reset      back to healthy, schedule cleared");
    println!("  GET  /control/stats      answers per operation");
    super::run::shutdown_signal().await;
    drop(simulator);
    Ok(())
}
