#pragma once
// The API handlers of the route table in router.cpp, one line each; each is defined in its
// owner's file. See http/api.hpp for what a handler receives and must do.

#include "http/api.hpp"

namespace vipportd::http {

// GET|HEAD /zstack/v1/vips/{uuid}/usedports (router.cpp): APIGetVipUsedPortsMsg.
void answer_usedports(ApiCall call, Router::Done done);
// GET|HEAD /vipportd/v1/vips/{uuid-or-ip}/claims (claims_api.cpp): why the ports are used.
void answer_claims(ApiCall call, Router::Done done);
// GET|HEAD /zstack/v1/vips/usedports (zstack_siblings.cpp): every registered VIP in one answer.
void answer_usedports_batch(ApiCall call, Router::Done done);
// GET|HEAD /zstack/v1/vips/{vipUuid}/check-port-availability (zstack_siblings.cpp):
// APICheckVipPortAvailabilityMsg.
void answer_check_port_availability(ApiCall call, Router::Done done);
// GET|HEAD /zstack/v1/vips/{vipUuid}/get-port-availability (zstack_siblings.cpp):
// APIGetVipAvailablePortMsg.
void answer_get_port_availability(ApiCall call, Router::Done done);

// GET|HEAD /vipportd/v1/vips (vips_api.cpp): every VIP with its origin, conflicts and presence.
void answer_vips_list(ApiCall call, Router::Done done);
// GET|HEAD, PUT, DELETE /vipportd/v1/vips/{uuid} (vips_api.cpp): one VIP; register; unregister.
void answer_vip_get(ApiCall call, Router::Done done);
void answer_vip_put(ApiCall call, Router::Done done);
void answer_vip_delete(ApiCall call, Router::Done done);

}  // namespace vipportd::http
