/*
 * The smallest complete use of libimp (DESIGN.md's example): load a model, make a context,
 * generate a continuation. Build: part of the CMake build (examples/simple); run:
 *     ./build/examples/simple model.gguf ["prompt"]
 */
#include <stdio.h>

#include <imp/imp.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "model.gguf";
    const char *prompt = argc > 2 ? argv[2] : "The capital of France is";

    ImpModel model;
    if (imp_model_load(path, IMP_FORMAT_GGUF, &model) != IMP_OK) return 1;
    ImpConfig cfg = imp_config_default();
    ImpContext ctx;
    if (imp_context_create(model, &cfg, &ctx) != IMP_OK) {
        imp_model_free(model);
        return 1;
    }
    ImpGenerateParams params = imp_generate_params_default();
    params.max_tokens = 16;
    params.temperature = 0.0f; /* greedy: the same answer every run */
    char output[4096];
    size_t output_len = 0;
    ImpStatus st = imp_generate(ctx, prompt, &params, output, sizeof(output), &output_len);
    if (st == IMP_OK) printf("%s%s\n", prompt, output);
    else fprintf(stderr, "imp_generate: %s: %s\n", imp_status_str(st), imp_context_last_error(ctx));
    imp_context_free(ctx);
    imp_model_free(model);
    return st == IMP_OK ? 0 : 1;
}
