"""Embed every set of research/eye_sets.py for a model file (cached): ``python research/eye_embed.py MODEL.onnx``."""
import sys, time
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import eye_sets
start = time.time()
sets = eye_sets.all_sets(eye_sets.Embedder(sys.argv[1]))
print("%d sets, %d embeddings, %.0f s" % (len(sets), sum(len(v) for v in sets.values()), time.time() - start))
