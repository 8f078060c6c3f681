/* fuzz_job.c - libFuzzer target for the journal's plan of a job
 * (job_from_json): any JSON either gives a job whose groups and dependents
 * are in range, or fails with a one-line message naming the job. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct choir_error err = {0};
    json_t *plan = json_loadb((const char *)data, size, 0, NULL);
    struct job *job;

    if (!plan)
        return 0;
    job = job_from_json("fuzz", plan, &err);
    if (!job) {
        if (!strstr(err.msg, "job fuzz") || strchr(err.msg, '\n'))
            abort();
    } else {
        for (uint32_t i = 0; i < job->nnodes; i++) {
            if (job->nodes[i].group >= job->ngroups)
                abort();
            for (uint32_t d = 0; d < job->nodes[i].ndependents; d++)
                if (job->nodes[i].dependents[d] >= job->nnodes)
                    abort();
        }
        json_decref(job_plan_json(job));
    }
    job_free(job);
    json_decref(plan);
    return 0;
}
