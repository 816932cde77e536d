//! decode(encode(x)) == x for every record and every request and reply body.

use std::fmt::Debug;

use proptest::prelude::*;

use zk_proto::jute::{from_bytes, to_bytes, Decode, Encode};

use super::strategies::{
    arb_acl, arb_acls, arb_add_watch_request, arb_auth_packet, arb_check_version_request,
    arb_client_info, arb_connect_request, arb_connect_response, arb_create2_response,
    arb_create_request, arb_create_response, arb_create_ttl_request, arb_delete_request,
    arb_error_code, arb_error_response, arb_get_acl_response, arb_get_all_children_number_response,
    arb_get_children2_response, arb_get_children_response, arb_get_data_response,
    arb_get_ephemerals_response, arb_id, arb_multi_header, arb_multi_request, arb_multi_response,
    arb_path_request, arb_path_response, arb_path_watch_request, arb_reconfig_request,
    arb_reply_header, arb_request_header, arb_sasl_packet, arb_set_acl_request,
    arb_set_data_request, arb_set_watches, arb_set_watches2, arb_stat, arb_stat_response,
    arb_watcher_event, arb_watches_request, arb_who_am_i_response,
};

fn assert_roundtrip<T: Encode + Decode + PartialEq + Debug>(x: &T) -> Result<(), TestCaseError> {
    let bytes = to_bytes(x);
    let back: T = from_bytes(bytes.clone())
        .map_err(|e| TestCaseError::fail(format!("{x:?} encodes to bytes that fail: {e}")))?;
    prop_assert_eq!(&back, x);
    prop_assert_eq!(to_bytes(&back), bytes);
    Ok(())
}

/// One property per record type, each over `ROUNDTRIP_CASES` cases.
const ROUNDTRIP_CASES: u32 = 512;

macro_rules! roundtrip_props {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(ROUNDTRIP_CASES))]
            $(
                #[test]
                fn $name(x in $strategy) {
                    assert_roundtrip(&x)?;
                }
            )*
        }
    };
}

roundtrip_props! {
    roundtrip_stat: arb_stat();
    roundtrip_id: arb_id();
    roundtrip_acl: arb_acl();
    roundtrip_acl_list: arb_acls();
    roundtrip_connect_request: arb_connect_request();
    roundtrip_connect_response: arb_connect_response();
    roundtrip_request_header: arb_request_header();
    roundtrip_reply_header: arb_reply_header();
    roundtrip_watcher_event: arb_watcher_event();
    roundtrip_create_request: arb_create_request();
    roundtrip_create_ttl_request: arb_create_ttl_request();
    roundtrip_create_response: arb_create_response();
    roundtrip_create2_response: arb_create2_response();
    roundtrip_delete_request: arb_delete_request();
    roundtrip_path_watch_request: arb_path_watch_request();
    roundtrip_stat_response: arb_stat_response();
    roundtrip_get_data_response: arb_get_data_response();
    roundtrip_set_data_request: arb_set_data_request();
    roundtrip_path_request: arb_path_request();
    roundtrip_get_acl_response: arb_get_acl_response();
    roundtrip_set_acl_request: arb_set_acl_request();
    roundtrip_get_children_response: arb_get_children_response();
    roundtrip_get_children2_response: arb_get_children2_response();
    roundtrip_path_response: arb_path_response();
    roundtrip_check_version_request: arb_check_version_request();
    roundtrip_reconfig_request: arb_reconfig_request();
    roundtrip_watches_request: arb_watches_request();
    roundtrip_add_watch_request: arb_add_watch_request();
    roundtrip_error_response: arb_error_response();
    roundtrip_error_code: arb_error_code();
    roundtrip_get_ephemerals_response: arb_get_ephemerals_response();
    roundtrip_get_all_children_number_response: arb_get_all_children_number_response();
    roundtrip_client_info: arb_client_info();
    roundtrip_who_am_i_response: arb_who_am_i_response();
    roundtrip_auth_packet: arb_auth_packet();
    roundtrip_sasl_packet: arb_sasl_packet();
    roundtrip_set_watches: arb_set_watches();
    roundtrip_set_watches2: arb_set_watches2();
    roundtrip_multi_header: arb_multi_header();
    roundtrip_multi_request: arb_multi_request();
    roundtrip_multi_response: arb_multi_response();
}
