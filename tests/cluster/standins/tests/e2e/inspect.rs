//! What tests read from an installation: its CR, ConfigMap and Deployment, the objects the
//! service made for runs, and the stand-in tool's record of its runs.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use linstor_standins::dbtool::running;

use super::install::Installation;

impl Installation {
    pub async fn linstor_controller(&self) -> linstor_migrator::cluster::LinstorController {
        let api: Api<linstor_migrator::cluster::LinstorController> =
            Api::namespaced(self.client.clone(), &self.ns);
        api.get(&self.controller).await.unwrap()
    }

    pub async fn config_toml(&self) -> String {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let cm = api.get(&self.config_map).await.unwrap();
        cm.data
            .and_then(|d| d.get("linstor.toml").cloned())
            .unwrap_or_default()
    }

    pub async fn deployment(&self) -> Deployment {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns);
        api.get(&self.deployment).await.unwrap()
    }

    /// Objects the service made for runs (migration pods, target ConfigMaps).
    pub async fn migration_objects(&self) -> Vec<String> {
        let selector = "app.kubernetes.io/managed-by=linstor-migrator";
        let lp = kube::api::ListParams::default().labels(selector);
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let mut out: Vec<String> = pods
            .list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| format!("pod/{}", p.metadata.name.clone().unwrap_or_default()))
            .collect();
        out.extend(
            cms.list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .map(|c| format!("configmap/{}", c.metadata.name.clone().unwrap_or_default())),
        );
        out
    }

    /// Every start of the linstor-database stand-in in this installation's migration pods, as
    /// the stand-in itself recorded it (also the ones the wrapper never saw end).
    pub fn tool_starts(&self) -> Vec<running::Start> {
        running::starts(&self.standin_state)
    }

    /// Asserts that no stand-in run started while another one of this installation was alive
    /// (the migration pod's one-at-a-time rule), and that none is alive any more.
    pub fn assert_tool_runs_one_at_a_time_and_gone(&self) {
        let starts = self.tool_starts();
        let overlaps: Vec<&running::Start> =
            starts.iter().filter(|s| !s.concurrent_with.is_empty()).collect();
        assert!(
            overlaps.is_empty(),
            "linstor-database runs overlapped in the migration pod: {overlaps:#?}\nall starts: {starts:#?}"
        );
        let alive: Vec<&running::Start> = starts.iter().filter(|s| s.process.alive()).collect();
        assert!(alive.is_empty(), "linstor-database runs still alive: {alive:#?}");
    }

    /// (subcommand, seconds) of every linstor-database run so far.
    pub fn tool_runs(&self) -> Vec<(String, f64, i32)> {
        std::fs::read_to_string(&self.tool_runs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (a, b): (i128, i128) = (f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?);
                Some((f[0].to_string(), (b - a) as f64 / 1e9, f.get(3)?.parse().ok()?))
            })
            .collect()
    }
}
