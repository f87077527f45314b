//! Process signals (Ctrl-C, SIGTERM) for the real binary. Under simulation there are no
//! signals: a simulated node is stopped by the simulator killing it.

/// Resolves on Ctrl-C or SIGTERM (real build); never resolves under simulation.
pub async fn terminate() {
    #[cfg(not(madsim))]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    biased;
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(madsim)]
    {
        std::future::pending::<()>().await
    }
}
