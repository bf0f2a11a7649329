//! Configuration text for tests, benchmarks and `autoscaler run --dev`: [`ConfigFixture`]
//! renders the TOML of a configuration file with one or more [`PoolFixture`]s, so the
//! `[controller]`, `[gitlab]`, `[[pools]]` template is written once, here, instead of by
//! hand in every test.
//!
//! ```
//! use autoscaler_config::fixture::{ConfigFixture, PoolFixture};
//! let text = ConfigFixture::new()
//!     .poll_interval("10s")
//!     .pool(PoolFixture::new("docker").limit(5).idle_time("10m"))
//!     .render();
//! let config = autoscaler_config::parse(&text, "test.toml").unwrap();
//! assert_eq!(config.pools[0].policy.limit, 5);
//! ```
//!
//! Behind cargo feature `fixture` (enabled from dev-dependencies and by the `autoscaler`
//! crate's `dev` feature), so a release build carries none of it. It renders text only: no
//! I/O, no validation (an invalid fixture makes an invalid file, which error tests want).
//! Keys nobody set are left out, so the parser's defaults apply.

use std::fmt::Display;
use std::path::Path;

/// The text of a whole configuration file. [`ConfigFixture::new`] is a minimal valid file
/// once it has a pool: controller `ci`, GitLab at `https://gitlab.example.com/` with
/// `token_file = "/etc/token"`, scope `projects = ["group/project"]`, no `[openstack]`.
#[derive(Debug, Clone)]
pub struct ConfigFixture {
    /// Comment lines at the top of the file (what wrote it, how to use it).
    header: Vec<String>,
    controller: Table,
    gitlab: Table,
    /// TOML lines of `[gitlab.scope]`: the scope has several shapes (ids, paths, groups,
    /// instance), so tests write it as they mean it.
    scope: String,
    /// TOML lines of `[openstack]`, when the test reaches a cloud over HTTP.
    openstack: Option<String>,
    /// Ready-made `[gitlab]`/`[gitlab.scope]`/`[openstack]` tables (for example
    /// `autoscaler_fakes::FakeSite::connection_toml`); replaces the three above.
    connection: Option<String>,
    pools: Vec<PoolFixture>,
}

/// One `[[pools]]` entry with its `[pools.server]`, `[pools.runner]` and
/// `[pools.bootstrap]` tables. [`PoolFixture::new`] sets only what a pool requires:
/// `limit = 4`, flavor `s1.large`, image `Debian 12`, network `net`, tag `docker`.
#[derive(Debug, Clone)]
pub struct PoolFixture {
    pool: Table,
    server: Table,
    runner: Table,
    bootstrap: Table,
    /// Raw TOML after the pool's tables: `[[pools.periods]]` blocks.
    extra: String,
}

// === impl ConfigFixture ===

impl Default for ConfigFixture {
    fn default() -> Self {
        ConfigFixture::new()
    }
}

impl ConfigFixture {
    /// The minimal connection settings and no pool (add one with [`ConfigFixture::pool`]).
    #[must_use]
    pub fn new() -> Self {
        let mut controller = Table::new("[controller]");
        controller.set("id", string("ci"));
        let mut gitlab = Table::new("[gitlab]");
        gitlab.set("url", string("https://gitlab.example.com/"));
        gitlab.set("token_file", string("/etc/token"));
        ConfigFixture {
            header: Vec::new(),
            controller,
            gitlab,
            scope: "projects = [\"group/project\"]".to_string(),
            openstack: None,
            connection: None,
            pools: Vec::new(),
        }
    }

    /// A comment at the top of the file, one `# ` line per line of `text`.
    #[must_use]
    pub fn header(mut self, text: &str) -> Self {
        self.header = text
            .lines()
            .map(|l| format!("# {l}").trim_end().to_string())
            .collect();
        self
    }

    /// `[controller] id`.
    #[must_use]
    pub fn id(mut self, id: &str) -> Self {
        self.controller.set("id", string(id));
        self
    }

    /// `[controller] poll_interval`, a duration such as `"10s"`.
    #[must_use]
    pub fn poll_interval(mut self, interval: &str) -> Self {
        self.controller.set("poll_interval", string(interval));
        self
    }

    /// `[controller] listen`.
    #[must_use]
    pub fn listen(mut self, addr: impl Display) -> Self {
        self.controller.set("listen", string(&addr.to_string()));
        self
    }

    /// `[controller] state_dir`.
    #[must_use]
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.controller
            .set("state_dir", string(&dir.display().to_string()));
        self
    }

    /// `[gitlab] url`.
    #[must_use]
    pub fn gitlab_url(mut self, url: &str) -> Self {
        self.gitlab.set("url", string(url));
        self
    }

    /// `[gitlab] token_file` (instead of any `token_env`).
    #[must_use]
    pub fn token_file(mut self, path: &Path) -> Self {
        self.gitlab.remove("token_env");
        self.gitlab
            .set("token_file", string(&path.display().to_string()));
        self
    }

    /// `[gitlab] token_env` (instead of any `token_file`).
    #[must_use]
    pub fn token_env(mut self, var: &str) -> Self {
        self.gitlab.remove("token_file");
        self.gitlab.set("token_env", string(var));
        self
    }

    /// The body of `[gitlab.scope]`, as TOML lines: `projects = [42]`, `instance = true`.
    #[must_use]
    pub fn scope(mut self, toml_lines: &str) -> Self {
        self.scope = toml_lines.to_string();
        self
    }

    /// The body of `[openstack]`, as TOML lines.
    #[must_use]
    pub fn openstack(mut self, toml_lines: &str) -> Self {
        self.openstack = Some(toml_lines.to_string());
        self
    }

    /// `[openstack]` naming cloud `cloud` of the `clouds.yaml` at `file`.
    #[must_use]
    pub fn clouds_yaml(self, cloud: &str, file: &Path) -> Self {
        let lines = format!(
            "cloud = {}\nclouds_file = {}",
            string(cloud),
            string(&file.display().to_string())
        );
        self.openstack(&lines)
    }

    /// `[openstack]` with password authentication: Keystone at `auth_url`, user `username`
    /// of project `project_name`, the password in environment variable `password_env`.
    #[must_use]
    pub fn password_auth(
        self,
        auth_url: &str,
        username: &str,
        project_name: &str,
        password_env: &str,
    ) -> Self {
        let lines = format!(
            "auth_url = {}\nusername = {}\nproject_name = {}\npassword_env = {}",
            string(auth_url),
            string(username),
            string(project_name),
            string(password_env)
        );
        self.openstack(&lines)
    }

    /// Ready-made `[gitlab]`, `[gitlab.scope]` and `[openstack]` tables, rendered as given
    /// in place of the ones [`ConfigFixture::gitlab_url`], [`ConfigFixture::token_file`],
    /// [`ConfigFixture::scope`] and [`ConfigFixture::openstack`] describe.
    #[must_use]
    pub fn connection(mut self, toml: &str) -> Self {
        self.connection = Some(toml.to_string());
        self
    }

    /// Adds a `[[pools]]` entry (pools are rendered in the order added).
    #[must_use]
    pub fn pool(mut self, pool: PoolFixture) -> Self {
        self.pools.push(pool);
        self
    }

    /// The configuration file's text.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            out.push_str(line);
            out.push('\n');
        }
        self.controller.render(&mut out);
        out.push('\n');
        match &self.connection {
            Some(raw) => push_block(&mut out, raw),
            None => {
                self.gitlab.render(&mut out);
                out.push('\n');
                push_block(&mut out, &format!("[gitlab.scope]\n{}", self.scope));
                if let Some(lines) = &self.openstack {
                    out.push('\n');
                    push_block(&mut out, &format!("[openstack]\n{lines}"));
                }
            }
        }
        for pool in &self.pools {
            out.push('\n');
            pool.render(&mut out);
        }
        out
    }
}

// === impl PoolFixture ===

impl PoolFixture {
    /// A pool called `name` with only the required settings (see [`PoolFixture`]).
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut pool = Table::new("[[pools]]");
        pool.set("name", string(name));
        pool.set("limit", "4".to_string());
        let mut server = Table::new("[pools.server]");
        server.set("flavor", string("s1.large"));
        server.set("image", string("Debian 12"));
        server.set("networks", list(&["net"]));
        let mut runner = Table::new("[pools.runner]");
        runner.set("tags", list(&["docker"]));
        PoolFixture {
            pool,
            server,
            runner,
            bootstrap: Table::new("[pools.bootstrap]"),
            extra: String::new(),
        }
    }

    /// `limit`: most VMs of this pool at once.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.pool.set("limit", limit.to_string());
        self
    }

    /// `idle_count`: idle runner slots kept warm.
    #[must_use]
    pub fn idle_count(mut self, count: u32) -> Self {
        self.pool.set("idle_count", count.to_string());
        self
    }

    /// `idle_time`, a duration such as `"10m"`.
    #[must_use]
    pub fn idle_time(mut self, time: &str) -> Self {
        self.pool.set("idle_time", string(time));
        self
    }

    /// `boot_timeout`, a duration such as `"5m"`.
    #[must_use]
    pub fn boot_timeout(mut self, timeout: &str) -> Self {
        self.pool.set("boot_timeout", string(timeout));
        self
    }

    /// `max_builds` (0: unlimited).
    #[must_use]
    pub fn max_builds(mut self, builds: u32) -> Self {
        self.pool.set("max_builds", builds.to_string());
        self
    }

    /// `forecast_days` (0: no forecast).
    #[must_use]
    pub fn forecast_days(mut self, days: u32) -> Self {
        self.pool.set("forecast_days", days.to_string());
        self
    }

    /// `capacity`: concurrent jobs per VM.
    #[must_use]
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.pool.set("capacity", capacity.to_string());
        self
    }

    /// `park_surplus`.
    #[must_use]
    pub fn park_surplus(mut self, park: bool) -> Self {
        self.pool.set("park_surplus", park.to_string());
        self
    }

    /// `[pools.server] flavor`.
    #[must_use]
    pub fn flavor(mut self, flavor: &str) -> Self {
        self.server.set("flavor", string(flavor));
        self
    }

    /// `[pools.server] image`.
    #[must_use]
    pub fn image(mut self, image: &str) -> Self {
        self.server.set("image", string(image));
        self
    }

    /// `[pools.server] networks`.
    #[must_use]
    pub fn networks(mut self, networks: &[&str]) -> Self {
        self.server.set("networks", list(networks));
        self
    }

    /// `[pools.server] security_groups`.
    #[must_use]
    pub fn security_groups(mut self, groups: &[&str]) -> Self {
        self.server.set("security_groups", list(groups));
        self
    }

    /// `[pools.runner] tags`.
    #[must_use]
    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.runner.set("tags", list(tags));
        self
    }

    /// `[pools.runner] run_untagged`.
    #[must_use]
    pub fn run_untagged(mut self, run: bool) -> Self {
        self.runner.set("run_untagged", run.to_string());
        self
    }

    /// `[pools.runner] docker_image`.
    #[must_use]
    pub fn docker_image(mut self, image: &str) -> Self {
        self.runner.set("docker_image", string(image));
        self
    }

    /// `[pools.runner] privileged`.
    #[must_use]
    pub fn privileged(mut self, privileged: bool) -> Self {
        self.runner.set("privileged", privileged.to_string());
        self
    }

    /// `[pools.bootstrap] docker_install` (`"image"`, ...).
    #[must_use]
    pub fn docker_install(mut self, how: &str) -> Self {
        self.bootstrap.set("docker_install", string(how));
        self
    }

    /// `[pools.bootstrap] runner_install` (`"image"`, ...).
    #[must_use]
    pub fn runner_install(mut self, how: &str) -> Self {
        self.bootstrap.set("runner_install", string(how));
        self
    }

    /// `[pools.bootstrap] qemu_binfmt`.
    #[must_use]
    pub fn qemu_binfmt(mut self, on: bool) -> Self {
        self.bootstrap.set("qemu_binfmt", on.to_string());
        self
    }

    /// `[pools.bootstrap] binfmt_arches`.
    #[must_use]
    pub fn binfmt_arches(mut self, arches: &[&str]) -> Self {
        self.bootstrap.set("binfmt_arches", list(arches));
        self
    }

    /// A VM image with Docker and gitlab-runner already installed and no binfmt setup:
    /// `docker_install = "image"`, `runner_install = "image"`, `qemu_binfmt = false`.
    #[must_use]
    pub fn preinstalled_image(self) -> Self {
        self.docker_install("image")
            .runner_install("image")
            .qemu_binfmt(false)
    }

    /// Raw TOML rendered after this pool's tables, such as a `[[pools.periods]]` block.
    #[must_use]
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self
    }

    fn render(&self, out: &mut String) {
        self.pool.render(out);
        for table in [&self.server, &self.runner, &self.bootstrap] {
            if !table.entries.is_empty() {
                out.push('\n');
                table.render(out);
            }
        }
        if !self.extra.trim().is_empty() {
            out.push('\n');
            push_block(out, &self.extra);
        }
    }
}

// === impl Table ===

/// One TOML table: its header and `key = value` lines in the order first set.
#[derive(Debug, Clone)]
struct Table {
    header: &'static str,
    /// Keys with their values already in TOML syntax.
    entries: Vec<(&'static str, String)>,
}

impl Table {
    fn new(header: &'static str) -> Self {
        Table {
            header,
            entries: Vec::new(),
        }
    }

    /// Sets `key`, keeping its place when it was set before.
    fn set(&mut self, key: &'static str, value: String) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| *k != key);
    }

    fn render(&self, out: &mut String) {
        out.push_str(self.header);
        out.push('\n');
        for (key, value) in &self.entries {
            out.push_str(key);
            out.push_str(" = ");
            out.push_str(value);
            out.push('\n');
        }
    }
}

/// `text` without blank lines around it, ending in one newline.
fn push_block(out: &mut String, text: &str) {
    out.push_str(text.trim_matches('\n'));
    out.push('\n');
}

/// A TOML string.
fn string(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}

/// A TOML array of strings.
fn list(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|s| string(s)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_fixture_renders_a_file_the_parser_accepts_with_those_values() {
        let text = ConfigFixture::new()
            .id("proc")
            .poll_interval("1s")
            .listen("127.0.0.1:9000")
            .token_env("TOKEN")
            .pool(
                PoolFixture::new("docker")
                    .limit(5)
                    .idle_count(1)
                    .idle_time("2s")
                    .security_groups(&["sg"])
                    .preinstalled_image()
                    .extra("[[pools.periods]]\nschedules = [\"* * * * *\"]\nidle_count = 0\n"),
            )
            .render();
        let c = crate::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.controller.id, "proc");
        assert_eq!(c.controller.poll_interval.as_secs(), 1);
        let p = &c.pools[0];
        assert_eq!((p.name.as_str(), p.policy.limit), ("docker", 5));
        assert_eq!(p.server.security_groups, ["sg"]);
        assert_eq!(p.periods.len(), 1);
    }

    #[test]
    fn strings_are_quoted_as_toml() {
        let text = ConfigFixture::new()
            .state_dir(Path::new("/tmp/a \"b\"\\c"))
            .render();
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        assert_eq!(
            doc["controller"]["state_dir"].as_str(),
            Some("/tmp/a \"b\"\\c")
        );
    }

    #[test]
    fn a_raw_connection_replaces_the_gitlab_tables() {
        let text = ConfigFixture::new()
            .connection("[gitlab]\nurl = \"http://x/\"\ntoken_env = \"T\"\n\n[gitlab.scope]\ninstance = true\n")
            .pool(PoolFixture::new("p"))
            .render();
        assert_eq!(text.matches("[gitlab]").count(), 1, "{text}");
        let c = crate::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.gitlab.url.as_str(), "http://x/");
    }
}
