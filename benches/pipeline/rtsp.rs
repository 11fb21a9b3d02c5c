//! A real RTSP server (gst-rtsp-server) inside the benchmark process, as in
//! tests/rtsp.rs: one media factory per mount, TCP only, each serving a clip file
//! (`filesrc ! matroskademux ! h264parse ! rtph264pay`) in real time from its start
//! when a client connects. A glib main loop on its own thread serves it; `stop` (or
//! drop) closes every connection and releases the port.

use std::path::Path;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gstreamer_rtsp_server as rtsp;
use rtsp::gst_rtsp::RTSPLowerTrans;
use rtsp::prelude::*;
use rtsp::{RTSPFilterResult, glib};

use crate::common;

/// The launch line of a mount serving `clip` (H.264 in Matroska). SPS/PPS go with
/// every key frame so that a client can start (or skip to) any of them.
pub fn clip_launch(clip: &Path) -> String {
    format!(
        "( filesrc location={} ! matroskademux ! h264parse config-interval=-1 \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        clip.display()
    )
}

pub struct RtspServer {
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Serves `mounts` (path such as `/cam0`, launch line) on a free port.
    pub fn start(mounts: Vec<(String, String)>) -> Result<Self, String> {
        let mut errors = Vec::new();
        for _ in 0..5 {
            match Self::start_on(common::free_port(), mounts.clone()) {
                Ok(s) => return Ok(s),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "cannot start the RTSP server: {}",
            errors.join("; ")
        ))
    }

    fn start_on(port: u16, mounts: Vec<(String, String)>) -> Result<Self, String> {
        gstreamer::init().map_err(|e| e.to_string())?;
        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let thread_loop = main_loop.clone();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = thread::Builder::new()
            .name(format!("rtsp-server-{port}"))
            .spawn(move || {
                let ctx = context.clone();
                let served = context
                    .with_thread_default(|| serve(&ctx, &thread_loop, port, &mounts, &ready_tx));
                if let Err(e) = served {
                    let _ = ready_tx.send(Err(format!("main context: {e}")));
                }
            })
            .map_err(|e| format!("cannot spawn the RTSP server thread: {e}"))?;
        let ready = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| Err("RTSP server did not start within 10 s".into()));
        let mut server = Self {
            port,
            main_loop,
            thread: Some(thread),
        };
        match ready {
            Ok(()) => Ok(server),
            Err(e) => {
                server.stop();
                Err(e)
            }
        }
    }

    /// `rtsp://127.0.0.1:PORT/MOUNT` (`mount` starts with `/`).
    pub fn url(&self, mount: &str) -> String {
        format!("rtsp://127.0.0.1:{}{mount}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.main_loop.quit();
            let _ = t.join();
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs on the server thread with `ctx` as its default main context.
fn serve(
    ctx: &glib::MainContext,
    main_loop: &glib::MainLoop,
    port: u16,
    mounts: &[(String, String)],
    ready: &mpsc::Sender<Result<(), String>>,
) {
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let Some(points) = server.mount_points() else {
        let _ = ready.send(Err("RTSP server has no mount points".into()));
        return;
    };
    for (path, launch) in mounts {
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(launch);
        factory.set_shared(true);
        factory.set_protocols(RTSPLowerTrans::TCP);
        points.add_factory(path, factory);
    }
    let source = match server.attach(Some(ctx)) {
        Ok(id) => id,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot listen on 127.0.0.1:{port}: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    main_loop.run();

    // Close every connection, end every session, stop listening.
    server.client_filter(Some(&mut |_, _| RTSPFilterResult::Remove));
    if let Some(pool) = server.session_pool() {
        pool.filter(Some(&mut |_, _| RTSPFilterResult::Remove));
    }
    for (path, _) in mounts {
        points.remove_factory(path);
    }
    // (`SourceId::remove` would look in the global default context, not ours.)
    if let Some(listening) = ctx.find_source_by_id(&source) {
        listening.destroy();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while ctx.iteration(false) && Instant::now() < deadline {}
}
