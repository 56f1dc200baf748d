//! coordination.k8s.io/v1 Leases, as a GET + replace-with-rv lock uses them.

use anyhow::{Context as _, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use crate::fixtures::{api_error, check_status, lease, micro_now};
use crate::server::{Ctx, on_every_server, within};

#[tokio::test]
async fn leases_support_create_get_and_optimistic_replace() {
    on_every_server("leases", async |ctx: &Ctx| {
        let api: Api<Lease> = ctx.api();
        let missing = api_error("get missing lease", within("get", api.get("hub")).await?)?;
        check_status("get missing lease", &missing, 404, "NotFound")?;

        let wanted = lease("hub", "replica-a", &[]);
        let created = within("create", api.create(&PostParams::default(), &wanted)).await??;
        let duplicate =
            api_error("duplicate lease", within("create", api.create(&PostParams::default(), &wanted)).await?)?;
        check_status("duplicate lease", &duplicate, 409, "AlreadyExists")?;

        let got = within("get", api.get("hub")).await??;
        ensure!(got.spec == wanted.spec, "lease spec did not round-trip: sent {:?}, got {:?}", wanted.spec, got.spec);
        ensure!(got.resource_version() == created.resource_version(), "get returned another rv");

        // Take over: the holder changes through a replace that names the rv read.
        let mut takeover = got.clone();
        let spec = takeover.spec.as_mut().context("lease has no spec")?;
        spec.holder_identity = Some("replica-b".into());
        spec.lease_transitions = Some(1);
        spec.acquire_time = Some(micro_now());
        spec.renew_time = Some(micro_now());
        let taken = within("replace", api.replace("hub", &PostParams::default(), &takeover)).await??;
        ensure!(taken.resource_version() != got.resource_version(), "replace kept the rv");
        let holder = taken.spec.as_ref().and_then(|s| s.holder_identity.clone());
        ensure!(holder.as_deref() == Some("replica-b"), "holder is {holder:?}");

        // The loser renews from its stale read: 409, and the lease stays with b.
        let mut renew = got;
        if let Some(spec) = renew.spec.as_mut() {
            spec.renew_time = Some(micro_now());
        }
        let conflict =
            api_error("stale renew", within("replace", api.replace("hub", &PostParams::default(), &renew)).await?)?;
        check_status("stale renew", &conflict, 409, "Conflict")?;
        let now = within("get", api.get("hub")).await??;
        let holder = now.spec.as_ref().and_then(|s| s.holder_identity.clone());
        ensure!(holder.as_deref() == Some("replica-b"), "after a rejected renew the holder is {holder:?}");
        Ok(())
    })
    .await;
}
