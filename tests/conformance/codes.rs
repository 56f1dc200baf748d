//! Raw HTTP status codes, which typed kube calls hide (201 on create, …).

use anyhow::{Context as _, ensure};
use kube::api::{DeleteParams, GetParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use kube::core::Request;

use crate::fixtures::deployment;
use crate::server::{Ctx, on_every_server, within};

#[tokio::test]
async fn http_status_codes_follow_the_api_conventions() {
    on_every_server("status-codes", async |ctx: &Ctx| {
        let path = format!("/apis/apps/v1/namespaces/{}/deployments", ctx.ns);
        let req = Request::new(&path);
        let body = serde_json::to_vec(&deployment("web", 0, &[]))?;
        let pp = PostParams::default();
        let cases = [
            ("create", req.create(&pp, body.clone()), 201),
            ("duplicate create", req.create(&pp, body.clone()), 409),
            ("get", req.get("web", &GetParams::default()), 200),
            ("get missing", req.get("nope", &GetParams::default()), 404),
            (
                "merge patch",
                req.patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"metadata": {"labels": {"a": "b"}}})),
                ),
                200,
            ),
            ("apply creating", req.patch("ssa", &PatchParams::apply("codes"), &Patch::Apply(ssa_body())), 201),
            ("apply updating", req.patch("ssa", &PatchParams::apply("codes"), &Patch::Apply(ssa_body())), 200),
            ("apply without fieldManager", req.patch("ssa2", &PatchParams::default(), &Patch::Apply(ssa_body())), 422),
            (
                "scale patch",
                req.patch_subresource(
                    "scale",
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
                ),
                200,
            ),
            ("create with a malformed body", req.create(&pp, b"{not json".to_vec()), 400),
            ("delete", req.delete("web", &DeleteParams::default()), 200),
            ("delete missing", req.delete("web", &DeleteParams::default()), 404),
        ];
        // Sent one by one, in order: each case builds on the previous ones.
        for (what, request, want) in cases {
            let request = request.with_context(|| format!("build {what}"))?;
            let got = match within(what, ctx.client.send(request.map(Body::from))).await? {
                Ok(resp) => resp.status().as_u16(),
                // kube turns non-2xx answers into errors carrying the Status.
                Err(kube::Error::Api(status)) => status.code,
                Err(e) => return Err(e).with_context(|| format!("send {what}")),
            };
            ensure!(got == want, "{what}: HTTP {got}, expected {want}");
        }
        Ok(())
    })
    .await;
}

fn ssa_body() -> serde_json::Value {
    let mut v = serde_json::to_value(deployment("ssa", 0, &[])).unwrap_or_default();
    v["apiVersion"] = "apps/v1".into();
    v["kind"] = "Deployment".into();
    v
}
