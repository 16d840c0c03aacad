#pragma once
// nf_tables over NETLINK_NETFILTER (kernel.md §2): typed objects, decoders, request builders, the
// consistent ruleset dump and the change-event subscription.

#include "netlink/nft_decode.hpp"   // IWYU pragma: export
#include "netlink/nft_dump.hpp"     // IWYU pragma: export
#include "netlink/nft_events.hpp"   // IWYU pragma: export
#include "netlink/nft_objects.hpp"  // IWYU pragma: export
#include "netlink/nft_request.hpp"  // IWYU pragma: export
