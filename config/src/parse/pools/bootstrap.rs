//! `[pools.bootstrap]`: the cloud-init options of a pool's VMs (how Docker and the
//! runner are installed, QEMU binfmt, extra cloud-config, shell hooks, metadata
//! blocking) and their defaults when the table is left out.

use url::Url;

use crate::model::{BootstrapOptions, DockerInstall, RunnerInstall};
use crate::parse::reader::{Ctx, Node};

/// Docker platform names accepted in `binfmt_arches`.
pub use autoscaler_bootstrap::binfmt_arch_names as binfmt_arches;

/// Default `runner_repository`.
pub const DEFAULT_RUNNER_REPOSITORY: &str = "https://packages.gitlab.com/runner/gitlab-runner";

/// Default `binfmt_arches`.
const DEFAULT_BINFMT_ARCHES: [&str; 2] = ["arm64", "arm"];

/// `docker_install` as spelled, before its URL is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DockerKind {
    Distro,
    Convenience,
    Script,
    Image,
}

/// The options of a pool without `[pools.bootstrap]`.
pub(super) fn default_bootstrap() -> BootstrapOptions {
    BootstrapOptions {
        docker_install: DockerInstall::Distro,
        qemu_binfmt: true,
        binfmt_arches: DEFAULT_BINFMT_ARCHES.map(str::to_owned).to_vec(),
        runner_install: RunnerInstall::Repository(default_repository().to_string()),
        extra_cloud_config_file: None,
        shell_before: None,
        shell_after: None,
        block_metadata_in_jobs: true,
    }
}

fn default_repository() -> Url {
    // The constant is a valid URL; a failure here is a programming error caught by the
    // `default_runner_repository_is_a_url` test.
    Url::parse(DEFAULT_RUNNER_REPOSITORY).unwrap_or_else(|_| unreachable!("constant URL parses"))
}

/// Reads `[pools.bootstrap]`; `None` when anything in it is wrong (reported).
pub(super) fn bootstrap(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<BootstrapOptions> {
    ctx.check_keys(
        n,
        &[
            "docker_install",
            "docker_install_url",
            "qemu_binfmt",
            "binfmt_arches",
            "runner_install",
            "runner_repository",
            "extra_cloud_config_file",
            "shell_before",
            "shell_after",
            "block_metadata_in_jobs",
        ],
        &[],
    );
    let mark = ctx.mark();
    let kind = ctx.choice_or_first(
        n,
        "docker_install",
        &[
            ("distro", DockerKind::Distro),
            ("convenience-script", DockerKind::Convenience),
            ("script-url", DockerKind::Script),
            ("image", DockerKind::Image),
        ],
    );
    let docker_install = match kind {
        Some(DockerKind::Script) => {
            let url = ctx.url(n, "docker_install_url");
            ctx.missing_because(
                n,
                "docker_install_url",
                "required when docker_install = \"script-url\"",
            );
            url.map(|u| DockerInstall::ScriptUrl(u.to_string()))
        }
        Some(other) => {
            ctx.forbid(
                n,
                "docker_install_url",
                "only used with docker_install = \"script-url\"",
            );
            Some(match other {
                DockerKind::Convenience => DockerInstall::ConvenienceScript,
                DockerKind::Image => DockerInstall::Image,
                _ => DockerInstall::Distro,
            })
        }
        None => None,
    };
    let qemu_binfmt = ctx.bool(n, "qemu_binfmt").unwrap_or(true);
    let binfmt_arches = match ctx.str_list(n, "binfmt_arches") {
        Some(list) => {
            for a in &list {
                if !binfmt_arches().any(|known| known == a.v) {
                    ctx.err(
                        &a.span,
                        &a.path,
                        format!(
                            "unknown architecture `{}`, expected one of {}",
                            a.v,
                            binfmt_arches().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
            list.into_iter().map(|s| s.v).collect()
        }
        None => DEFAULT_BINFMT_ARCHES.map(str::to_owned).to_vec(),
    };
    let image = ctx.choice_or_first(
        n,
        "runner_install",
        &[("repository", false), ("image", true)],
    );
    let runner_install = match image {
        Some(true) => {
            ctx.forbid(
                n,
                "runner_repository",
                "only used with runner_install = \"repository\"",
            );
            Some(RunnerInstall::Image)
        }
        Some(false) => ctx
            .defaulted(n, "runner_repository", Ctx::url, default_repository)
            .map(|u| RunnerInstall::Repository(u.to_string())),
        None => None,
    };
    let options = BootstrapOptions {
        docker_install: docker_install?,
        qemu_binfmt,
        binfmt_arches,
        runner_install: runner_install?,
        extra_cloud_config_file: ctx.path(n, "extra_cloud_config_file"),
        shell_before: ctx.str(n, "shell_before").map(|s| s.v),
        shell_after: ctx.str(n, "shell_after").map(|s| s.v),
        block_metadata_in_jobs: ctx.bool(n, "block_metadata_in_jobs").unwrap_or(true),
    };
    ctx.clean_since(mark, options)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::testing::*;

    #[test]
    fn default_runner_repository_is_a_url() {
        assert_eq!(default_repository().as_str(), DEFAULT_RUNNER_REPOSITORY);
    }

    #[test]
    fn docker_install_url_iff_script_url() {
        let b = |lines: &str| format!("{BASE}\n[pools.bootstrap]\n{lines}\n");
        one_err(
            &b("docker_install = \"script-url\""),
            "pools[0].bootstrap.docker_install_url",
            "required when",
        );
        one_err(
            &b("docker_install_url = \"https://x/i.sh\""),
            "pools[0].bootstrap.docker_install_url",
            "only used with",
        );
        let c = ok(&b(
            "docker_install = \"script-url\"\ndocker_install_url = \"https://x/i.sh\"",
        ));
        assert!(matches!(
            c.pools[0].bootstrap.docker_install,
            DockerInstall::ScriptUrl(_)
        ));
    }

    #[test]
    fn block_metadata_in_jobs_can_be_turned_off_and_must_be_a_boolean() {
        let cfg = ok(&format!(
            "{BASE}\n[pools.bootstrap]\nblock_metadata_in_jobs = false\n"
        ));
        assert!(!cfg.pools[0].bootstrap.block_metadata_in_jobs);
        one_err(
            &format!("{BASE}\n[pools.bootstrap]\nblock_metadata_in_jobs = \"no\"\n"),
            "pools[0].bootstrap.block_metadata_in_jobs",
            "expected true or false",
        );
    }

    #[test]
    fn binfmt_arches_are_validated() {
        let src = format!("{BASE}\n[pools.bootstrap]\nbinfmt_arches = [\"arm64\", \"vax\"]\n");
        one_err(
            &src,
            "pools[0].bootstrap.binfmt_arches[1]",
            "unknown architecture `vax`",
        );
    }

    #[test]
    fn runner_repository_only_with_repository_install() {
        let src = format!(
            "{BASE}\n[pools.bootstrap]\nrunner_install = \"image\"\nrunner_repository = \"https://x\"\n"
        );
        one_err(
            &src,
            "pools[0].bootstrap.runner_repository",
            "only used with",
        );
    }
}
