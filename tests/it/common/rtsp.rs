//! A real RTSP server (gst-rtsp-server) inside the test or benchmark process: one
//! media factory per mount, served by a glib main loop on its own thread. `stop` (or
//! drop) tears it down as a dying server would: every client connection closed,
//! every session ended, the port released.

use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gstreamer_rtsp_server as rtsp;
pub use rtsp::gst_rtsp::RTSPLowerTrans;
use rtsp::prelude::*;
use rtsp::{RTSPFilterResult, glib};

/// One mount point: a path such as `/cam0`, a gst-rtsp-server launch line (its
/// payloader named `pay0`) and the lower transports it accepts.
#[derive(Clone)]
pub struct RtspMount {
    pub path: String,
    pub launch: String,
    pub protocols: RTSPLowerTrans,
}

/// The photo, letterboxed (square pixels, black borders) into 640x360, repeated at
/// 10 fps as a live source, encoded for low latency with a key frame every second.
pub fn photo_launch_line(image: &std::path::Path) -> String {
    format!(
        "( filesrc location={} ! pngdec ! imagefreeze is-live=true ! videoconvert \
         ! videoscale add-borders=true \
         ! video/x-raw,format=I420,width=640,height=360,pixel-aspect-ratio=1/1,framerate=10/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
         ! rtph264pay name=pay0 pt=96 )",
        image.display()
    )
}

pub struct RtspServer {
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Serves `mounts` on 127.0.0.1:`port`.
    pub fn start(port: u16, mounts: Vec<RtspMount>) -> Result<Self, String> {
        Self::start_with_auth(port, mounts, None)
    }

    /// Serves `mounts` on a free port to clients that log in as `user`:`password`
    /// (HTTP Basic); others get 401 Unauthorized.
    pub fn start_on_free_port_with_auth(
        mounts: Vec<RtspMount>,
        user: &str,
        password: &str,
    ) -> Result<Self, String> {
        let login = Some((user.to_string(), password.to_string()));
        let mut errors = Vec::new();
        for _ in 0..5 {
            match Self::start_with_auth(super::free_port(), mounts.clone(), login.clone()) {
                Ok(s) => return Ok(s),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "cannot start the RTSP server: {}",
            errors.join("; ")
        ))
    }

    fn start_with_auth(
        port: u16,
        mounts: Vec<RtspMount>,
        login: Option<(String, String)>,
    ) -> Result<Self, String> {
        gstreamer::init().map_err(|e| e.to_string())?;
        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let thread_loop = main_loop.clone();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = thread::Builder::new()
            .name(format!("rtsp-server-{port}"))
            .spawn(move || {
                let ctx = context.clone();
                let served = context.with_thread_default(|| {
                    serve(&ctx, &thread_loop, port, &mounts, login.as_ref(), &ready_tx)
                });
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

    /// Serves `mounts` on a free port (a few tries: another process may take it).
    pub fn start_on_free_port(mounts: Vec<RtspMount>) -> Result<Self, String> {
        let mut errors = Vec::new();
        for _ in 0..5 {
            match Self::start(super::free_port(), mounts.clone()) {
                Ok(s) => return Ok(s),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "cannot start the RTSP server: {}",
            errors.join("; ")
        ))
    }

    pub fn url(&self, scheme: &str, mount: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{mount}", self.port)
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
    mounts: &[RtspMount],
    login: Option<&(String, String)>,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    if let Some((user, password)) = login {
        let auth = rtsp::RTSPAuth::new();
        let token = rtsp::RTSPToken::builder()
            .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
            .build();
        auth.add_basic(&rtsp::RTSPAuth::make_basic(user, password), &token);
        server.set_auth(Some(&auth));
    }
    let Some(points) = server.mount_points() else {
        let _ = ready.send(Err("RTSP server has no mount points".into()));
        return;
    };
    for m in mounts {
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(&m.launch);
        factory.set_shared(true);
        factory.set_protocols(m.protocols);
        if login.is_some() {
            factory.add_role_from_structure(
                &gstreamer::Structure::builder("user")
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        points.add_factory(&m.path, factory);
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

    // Tear down as a dying server would: close every connection, end every session
    // (UDP sessions outlive their connection otherwise), stop listening.
    server.client_filter(Some(&mut |_, _| RTSPFilterResult::Remove));
    if let Some(pool) = server.session_pool() {
        pool.filter(Some(&mut |_, _| RTSPFilterResult::Remove));
    }
    for m in mounts {
        points.remove_factory(&m.path);
    }
    // (`SourceId::remove` would look in the global default context, not ours.)
    if let Some(listening) = ctx.find_source_by_id(&source) {
        listening.destroy();
    }
    // Let the closes and media unprepares queued on this context run.
    let deadline = Instant::now() + Duration::from_secs(2);
    while ctx.iteration(false) && Instant::now() < deadline {}
}
