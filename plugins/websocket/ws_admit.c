/*
 * What a route asks of an upgrade request before the core hears of it: the
 * upgrade rate of the client's address, its Origin and a subprotocol in
 * common.  Checked in that order, cheapest and least revealing first, on
 * the main loop, after the request has been parsed and routed.
 *
 * Refusals, each counted and logged (rate-limited) as a warning:
 *   429 Too Many Requests, with Retry-After, over the upgrade rate;
 *   403 Forbidden for an Origin not allowed, or none where one is required;
 *   400 Bad Request for no subprotocol in common where one is required: the
 *       request lacks something the route cannot do without, as it would
 *       lack a header.
 */
#include "ws.h"
#include "ws_handshake.h"

int
ws_admit_request(struct ws_conn *c, const struct ws_route_opts *opts,
                 const struct ws_hs_request *hs, const char **subprotocol,
                 uint32_t *retry_after_s)
{
    const char *origin = hs->origin;
    size_t origin_len = hs->origin_len;
    struct ws_state *ws = ws_of(c);
    const char *route = opts->name != NULL ? opts->name : "*";
    char peer[WS_ADDR_STRLEN];

    *subprotocol = NULL;
    *retry_after_s = ws_peer_upgrade(ws, c->fd);
    if (*retry_after_s > 0) {
        WS_COUNT(ws, refused_rate);
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            WS_LOG(
                ws, TORPOR_LOG_WARN, NULL,
                "could not upgrade \"%s\": over %u upgrades per second, answered 429",
                peer, ws->cfg.max_upgrades_per_second_per_address);
        }
        return 429;
    }
    if (origin == NULL ? opts->origin_required
                       : !ws_route_origin_allowed(opts, origin, origin_len)) {
        WS_COUNT(ws, refused_origin);
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            if (origin == NULL) {
                WS_LOG(
                    ws, TORPOR_LOG_WARN, NULL,
                    "could not upgrade \"%s\" on route \"%s\": no Origin, and the route requires one; answered 403",
                    peer, route);
            } else {
                WS_LOG(
                    ws, TORPOR_LOG_WARN, NULL,
                    "could not upgrade \"%s\" on route \"%s\": origin \"%.*s\" is not allowed; answered 403",
                    peer, route, (int)(origin_len < 256 ? origin_len : 256),
                    origin);
            }
        }
        return 403;
    }
    *subprotocol = ws_route_pick_subprotocol(
        opts, hs->protocol_lines, hs->protocol_line_lens, hs->n_protocol_lines);
    if (*subprotocol == NULL && opts->subprotocol_required) {
        WS_COUNT(ws, refused_subprotocol);
        if (ws_warn_allowed(ws)) {
            ws_conn_peer(c, peer);
            WS_LOG(
                ws, TORPOR_LOG_WARN, NULL,
                "could not upgrade \"%s\" on route \"%s\": offered subprotocols \"%.*s\"%s, none of those the route requires; answered 400",
                peer, route,
                (int)(hs->protocols_len < 256 ? hs->protocols_len : 256),
                hs->protocols != NULL ? hs->protocols : "",
                hs->n_protocol_lines > 1 ? " and more lines" : "");
        }
        return 400;
    }
    return 0;
}
