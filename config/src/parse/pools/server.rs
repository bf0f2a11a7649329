//! `[pools.server]`: the VM template (flavor, image, networks, security groups, key
//! pair, availability zone, boot volume, metadata) as names; the OpenStack adapter
//! resolves them against the cloud.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use crate::model::ServerTemplate;
use crate::parse::names::{join, type_name};
use crate::parse::reader::{Ctx, Node};

/// Reads `[pools.server]`; `None` when anything in it is wrong (reported).
pub(super) fn server(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<ServerTemplate> {
    ctx.check_keys(
        n,
        &[
            "flavor",
            "image",
            "networks",
            "security_groups",
            "key_name",
            "availability_zone",
            "boot_volume_size",
            "metadata",
        ],
        &[],
    );
    let mark = ctx.mark();
    let flavor = ctx.required(n, "flavor", Ctx::str);
    let image = ctx.required(n, "image", Ctx::str);
    let networks = ctx.required(n, "networks", Ctx::str_list);
    if networks.as_ref().is_some_and(Vec::is_empty) {
        ctx.err_at(n, "networks", "at least one network is required");
    }
    let security_groups = ctx.str_list(n, "security_groups").unwrap_or_default();
    let key_name = ctx.str(n, "key_name").map(|s| s.v);
    let availability_zone = ctx.str(n, "availability_zone").map(|s| s.v);
    let boot_volume_size = ctx.u32(n, "boot_volume_size").and_then(|s| {
        NonZeroU32::new(s.v).or_else(|| {
            ctx.err(
                &s.span,
                &s.path,
                "must be at least 1 (GB); leave it out to boot from the image",
            );
            None
        })
    });
    let mut metadata = BTreeMap::new();
    if let Some(m) = ctx.table(n, "metadata") {
        for (key, item) in m.table.iter() {
            match item.as_str() {
                Some(v) => {
                    metadata.insert(key.to_owned(), v.to_owned());
                }
                None => ctx.err(
                    &item.span(),
                    &join(&m.path, key),
                    format!("metadata values must be strings, found {}", type_name(item)),
                ),
            }
        }
    }
    let t = ServerTemplate {
        flavor: flavor?.v,
        image: image?.v,
        networks: networks?.into_iter().map(|s| s.v).collect(),
        security_groups: security_groups.into_iter().map(|s| s.v).collect(),
        key_name,
        availability_zone,
        boot_volume_size,
        metadata,
    };
    ctx.clean_since(mark, t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::num::NonZeroU32;

    use crate::parse::testing::*;

    #[test]
    fn server_needs_flavor_image_and_a_network() {
        one_err(
            &BASE.replace("flavor = \"s1.large\"", ""),
            "pools[0].server.flavor",
            "missing required key",
        );
        one_err(
            &BASE.replace("networks = [\"net\"]", "networks = []"),
            "pools[0].server.networks",
            "at least one network",
        );
        one_err(
            &BASE.replace("networks = [\"net\"]", ""),
            "pools[0].server.networks",
            "missing required key",
        );
    }

    #[test]
    fn server_optional_fields_are_checked() {
        one_err(
            &with("[pools.server]", "boot_volume_size = 0"),
            "pools[0].server.boot_volume_size",
            "at least 1",
        );
        one_err(
            &with("[pools.server]", "metadata = { team = 1 }"),
            "pools[0].server.metadata.team",
            "must be strings",
        );
        let c = ok(&with(
            "[pools.server]",
            "metadata = { team = \"ci\" }\nboot_volume_size = 40",
        ));
        assert_eq!(
            c.pools[0].server.metadata.get("team").map(String::as_str),
            Some("ci")
        );
        assert_eq!(
            c.pools[0].server.boot_volume_size.map(NonZeroU32::get),
            Some(40)
        );
    }

    #[test]
    fn missing_server_table_is_reported() {
        let src = BASE.replace(
            "[pools.server]\nflavor = \"s1.large\"\nimage = \"Debian 12\"\nnetworks = [\"net\"]\n",
            "",
        );
        one_err(
            &src,
            "pools[0].server",
            "missing required table [pools.server]",
        );
    }
}
