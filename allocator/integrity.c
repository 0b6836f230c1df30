#include "integrity.h"

#include <stdlib.h>

#include "registry.h"
#include "report.h"

_Atomic uint64_t hak_integrity_count;
_Atomic int hak_fault_mode;

enum hak_node_problem hak_node_check(const void *node, unsigned cls) {
  if (!hak_registry_contains(node)) return HAK_NODE_NOT_REGISTERED;
  const struct hak_slab *s = hak_slab_of(node);
  if (s->magic != HAK_SLAB_MAGIC || s->cls >= HAK_NUM_CLASSES)
    return HAK_NODE_NO_SPAN;
  if (s->cls != cls) return HAK_NODE_WRONG_CLASS;
  uint32_t idx = hak_block_index(s, node);
  if (s->start + (size_t)idx * s->block_size != (const char *)node)
    return HAK_NODE_OFF_BOUNDARY;
  if (idx >= atomic_load_explicit(&s->carved, memory_order_relaxed))
    return HAK_NODE_NEVER_CARVED;
  if (!hak_node_sealed(node, hak_free_tag(node, cls))) return HAK_NODE_BAD_TAG;
  return HAK_NODE_OK;
}

static const char *const fault_names[] = {
    [HAK_FAULT_DOUBLE_FREE] = "double free",
    [HAK_FAULT_INVALID_FREE] = "invalid free",
    [HAK_FAULT_SLL_CORRUPTION] = "TLS SLL corruption",
    [HAK_FAULT_SIZE_MISMATCH] = "sized free with the wrong size",
    [HAK_FAULT_OVERFLOW] = "heap overflow (bytes past the end of the block overwritten) at free",
    [HAK_FAULT_UNDERFLOW] = "heap underflow (bytes before the block overwritten) at free",
};

static const char *const problem_texts[] = {
    [HAK_NODE_OK] = "",
    [HAK_NODE_NOT_REGISTERED] = "not in any SuperSlab hakmem knows",
    [HAK_NODE_NOT_LARGE] = "neither in a SuperSlab nor a live large block",
    [HAK_NODE_NO_SPAN] = "in a SuperSlab but in no live slab",
    [HAK_NODE_WRONG_CLASS] = "a block of another class",
    [HAK_NODE_OFF_BOUNDARY] = "interior pointer, not at a block boundary",
    [HAK_NODE_NEVER_CARVED] = "beyond the blocks its slab has handed out",
    [HAK_NODE_BAD_TAG] = "its free tag or its link is wrong",
    [HAK_NODE_BAD_COUNT] = "its slab's free list holds more or fewer blocks than counted",
};

/* Appends where p lives: segment, slab, class, offset from the block
 * start and the owning heap. */
static void describe(struct hak_msg *m, const void *p) {
  if (!hak_registry_contains(p)) {
    hak_msg_str(m, "; origin: outside every hakmem SuperSlab");
    return;
  }
  const struct hak_slab *s = hak_slab_of(p);
  hak_msg_str(m, "; origin: SuperSlab ");
  hak_msg_hex(m, (uintptr_t)hak_segment_of(p));
  if (s->cls >= HAK_NUM_CLASSES) {
    hak_msg_str(m, ", no live slab there");
    return;
  }
  uint32_t idx = hak_block_index(s, p);
  const char *block = s->start + (size_t)idx * s->block_size;
  hak_msg_str(m, ", slab ");
  hak_msg_hex(m, (uintptr_t)s->start);
  hak_msg_str(m, " of class ");
  hak_msg_u64(m, s->cls);
  hak_msg_str(m, " (");
  hak_msg_u64(m, s->block_size);
  hak_msg_str(m, " B), block ");
  hak_msg_hex(m, (uintptr_t)block);
  if ((const char *)p != block) {
    hak_msg_str(m, " + ");
    hak_msg_u64(m, (uint64_t)((const char *)p - block));
  }
  struct hak_heap *owner = atomic_load_explicit(&((struct hak_slab *)s)->owner,
                                                memory_order_relaxed);
  if (owner == &hak_no_owner) {
    hak_msg_str(m, ", no owner");
  } else {
    hak_msg_str(m, ", owned by heap ");
    hak_msg_u64(m, owner->id);
  }
}

static int found_class(const void *p) {
  if (!hak_registry_contains(p)) return -1;
  const struct hak_slab *s = hak_slab_of(p);
  return s->cls < HAK_NUM_CLASSES ? s->cls : -1;
}

void hak_fault(enum hak_fault_kind kind, const void *ptr, int expected_cls,
               enum hak_node_problem problem) {
  atomic_fetch_add_explicit(&hak_integrity_count, 1, memory_order_relaxed);
  struct hak_msg m = {0};
  hak_msg_str(&m, "hakmem: ");
  hak_msg_str(&m, fault_names[kind]);
  hak_msg_str(&m, " of ");
  hak_msg_hex(&m, (uintptr_t)ptr);
  if (problem != HAK_NODE_OK) {
    hak_msg_str(&m, " (");
    hak_msg_str(&m, problem_texts[problem]);
    hak_msg_str(&m, ")");
  }
  if (expected_cls >= 0) {
    hak_msg_str(&m, "; expected class ");
    hak_msg_u64(&m, (uint64_t)expected_cls);
  }
  int found = found_class(ptr);
  if (found >= 0) {
    hak_msg_str(&m, ", found class ");
    hak_msg_u64(&m, (uint64_t)found);
  }
  describe(&m, ptr);
  int report_only = atomic_load_explicit(&hak_fault_mode, memory_order_relaxed) ==
                    HAK_FAULT_REPORT;
  hak_msg_str(&m, report_only ? "; block dropped, continuing" : "; aborting");
  hak_msg_send(&m, 2);
  if (!report_only) abort();
}

void hak_set_fault_action(enum hak_fault_action action) {
  atomic_store_explicit(&hak_fault_mode, (int)action, memory_order_relaxed);
}

uint64_t hak_integrity_events(void) {
  return atomic_load_explicit(&hak_integrity_count, memory_order_relaxed);
}
