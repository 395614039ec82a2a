/*
 * libFuzzer target for the config file (util/yaml.c, util/cfg.c): the input is the text of
 * a --config file.  It is loaded against the real settings table and, as a tree, decoded
 * with a nested schema of the shape later sections use (named entries holding a section,
 * lists, maps, enums).  Checks that every refusal names the file, that what decodes is well
 * formed, and (under ASan) that nothing leaks on any path.  Every input that loads also goes
 * through agents_load() (agent/config.c): what it accepts is checked for the shape the broker
 * relies on, what it refuses must name the file.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/config.h"
#include "util/cfg.h"
#include "util/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct f_sub {
    struct cfg_strlist shell;
    struct cfg_strmap env;
};

struct f_entry {
    char *name;
    char *model;
    struct cfg_strlist tools;
    struct f_sub allow;
    int64_t n;
    bool on;
    char *kind;
};

struct f_root {
    struct cfg_entries agents;
    const struct ynode *other;
};

static const struct cfg_field sub_fields[] = {
    {.name = "shell", .type = CFG_LIST, .off = offsetof(struct f_sub, shell)},
    {.name = "env", .type = CFG_MAP, .off = offsetof(struct f_sub, env)},
};
static const struct cfg_schema sub_schema = {sub_fields, 2, sizeof(struct f_sub), 0, 0};

static const char *const kinds[] = {"a", "b", NULL};
#define E(f) offsetof(struct f_entry, f)
static const struct cfg_field entry_fields[] = {
    {.name = "model", .type = CFG_STR, .off = E(model), .flags = CFG_REQUIRED},
    {.name = "tools", .type = CFG_LIST, .off = E(tools)},
    {.name = "allow", .type = CFG_SECTION, .off = E(allow), .sub = &sub_schema},
    {.name = "n", .type = CFG_INT, .off = E(n), .def = "5", .min = 0, .max = 9},
    {.name = "on", .type = CFG_BOOL, .off = E(on)},
    {.name = "kind", .type = CFG_ENUM, .off = E(kind), .choices = kinds},
};
#undef E
static const struct cfg_schema entry_schema = {entry_fields, 6, sizeof(struct f_entry),
                                               offsetof(struct f_entry, name), 0};

static const struct cfg_field root_fields[] = {
    {.name = "agents",
     .type = CFG_ENTRIES,
     .off = offsetof(struct f_root, agents),
     .sub = &entry_schema},
    {.name = "other", .type = CFG_NODE, .off = offsetof(struct f_root, other)},
};
static const struct cfg_schema root_schema = {root_fields, 2, sizeof(struct f_root), 0, 0};

static void check_list(const struct cfg_strlist *l)
{
    assert(l->n == 0 || l->v[l->n] == NULL);
    for (size_t i = 0; i < l->n; i++)
        assert(l->v[i] != NULL);
}

static void check_map(const struct cfg_strmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        assert(m->keys[i] && m->values[i]);
}

static void check_refusal(const struct gw_err *e, const char *name)
{
    assert(e->code == GW_EINVAL);
    assert(strncmp(e->msg, name, strlen(name)) == 0);
    assert(e->msg[strlen(name)] == ':');
}

static void nested(const uint8_t *data, size_t size)
{
    struct ydoc d;
    struct gw_err e = {0};
    struct f_root r = {0};

    if (ydoc_load_mem(&d, "nested.yaml", data, size, &e)) {
        check_refusal(&e, "nested.yaml");
        return;
    }
    assert(d.root && d.root->kind == YNODE_MAP);
    if (cfg_decode(d.root, NULL, &root_schema, &r, &e) == GW_OK) {
        const struct f_entry *v = r.agents.v;
        for (size_t i = 0; i < r.agents.n; i++) {
            assert(v[i].name && v[i].model);
            assert(v[i].n >= 0 && v[i].n <= 9);
            assert(!v[i].kind || strcmp(v[i].kind, "a") == 0 || strcmp(v[i].kind, "b") == 0);
            check_list(&v[i].tools);
            check_list(&v[i].allow.shell);
            check_map(&v[i].allow.env);
        }
        assert(!r.other || r.other == ynode_get(d.root, "other"));
        cfg_decoded_release(&root_schema, &r);
    } else {
        check_refusal(&e, "nested.yaml");
        assert(r.agents.n == 0 && r.agents.v == NULL); /* released on failure */
    }
    ydoc_release(&d);
}

static void check_agent(const struct agents *as, const struct agent *ag)
{
    size_t k = 0;

    assert(ag->name && ag->model && ag->instructions && ag->workdir[0] == '/');
    assert(strncmp(ag->model_id, AGENT_MODEL_PREFIX, strlen(AGENT_MODEL_PREFIX)) == 0);
    assert(strcmp(ag->model_id + strlen(AGENT_MODEL_PREFIX), ag->name) == 0);
    assert(agents_find(as, ag->model_id) == ag);
    assert(ag->profile.id == ag->model_id && ag->profile.workdir == ag->workdir);
    assert(ag->profile.request_permission && ag->profile.hooks);
    assert(!ag->nmcp == !ag->profile.mcp_servers);
    assert(json_object_size(ag->profile.mcp_servers) == ag->nmcp);
    assert(!ag->delegates == !ag->profile.custom_agents);
    for (const char *const *t = ag->profile.available_tools; t && *t; t++)
        k++;
    assert(k >= (ag->nmcp ? 1 : 0) + (ag->delegates ? 4 : 0));
    for (size_t i = 0; i < ag->nmcp; i++) {
        const struct agent_mcp *m = &ag->mcp[i];
        assert(m->remote ? m->url && !m->command : m->command && !m->url);
        assert(m->timeout_s >= 1 && m->timeout_s <= 86400);
    }
    for (size_t i = 0; ag->delegates && ag->delegates[i]; i++)
        assert(strcmp(ag->delegates[i], ag->name) != 0);
}

static void agents(const struct gw_config *c)
{
    struct agents as;
    struct gw_err e = {0};

    if (agents_load(cfg_file_node(c, "agents"), &as, &e) == GW_OK) {
        for (size_t i = 0; i < as.n; i++)
            check_agent(&as, &as.v[i]);
    } else {
        check_refusal(&e, "fuzz.yaml");
        assert(as.n == 0 && as.v == NULL);
    }
    agents_free(&as);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_config c;
    struct gw_err e = {0};

    if (cfg_load_mem(&c, "fuzz.yaml", data, size, &e) == GW_OK) {
        assert(c.listen && c.data && c.provider_type && c.log_level);
        assert(c.max_body_bytes >= 1024 && c.max_body_bytes <= 1073741824);
        assert(c.file.root && c.file.root->kind == YNODE_MAP);
        agents(&c);
    } else {
        check_refusal(&e, "fuzz.yaml");
    }
    cfg_release(&c);
    nested(data, size);
    return 0;
}
