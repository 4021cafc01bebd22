"""Train ResNet-20 (cconv.models.resnet20, a graph cconv.Model) on a CIFAR-like synthetic set:
colour 32x32 images of ten shapes (cconv.datasets.make_shapes), with the progress bar, a cosine
learning-rate schedule, and pictures of what it learned.

    python examples/resnet20_shapes.py [OUT_DIR] [--epochs 3] [--samples 3000] [--threads T]
        shapes_samples.png      sixteen test images with their true and predicted classes
        shapes_filters.png      the 16 first-layer 3x3 filters (the RGB channels of each, summed)
        shapes_activations.png  the maps of one test image after the first stage's last block
        shapes_history.png      loss and accuracy per epoch, training and test

A few minutes on 2 cores with the defaults, after which the test accuracy is well above 90%;
fewer samples or epochs run faster.
"""
import argparse
import os

import numpy as np

import cconv
from cconv import callbacks, datasets, optim, viz


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", nargs="?", default=".")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=3000, help="training images (test: a quarter as many)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads is not None:
        cconv.set_num_threads(args.threads)

    x_train, y_train = datasets.make_shapes(args.samples, seed=args.seed)
    x_test, y_test = datasets.make_shapes(max(args.samples // 4, 16), seed=args.seed + 1)
    model = cconv.models.resnet20(num_classes=len(datasets.SHAPE_CLASSES), seed=args.seed)
    model.summary(print_fn=lambda text: print("\n".join(text.splitlines()[:6] + ["..."] + text.splitlines()[-3:])))

    trainer = cconv.Trainer(model, optimizer=optim.Adam(2e-3))
    history = trainer.fit(x_train, y_train, epochs=args.epochs, batch_size=32, seed=args.seed,
                          validation_data=(x_test, y_test), verbose=1,
                          augment=datasets.RandomShift(2, probability=0.5),
                          callbacks=[callbacks.LearningRateScheduler(optim.CosineLR(args.epochs))])
    print(f"test accuracy {trainer.evaluate(x_test, y_test)['accuracy']:.3f}")

    os.makedirs(args.out_dir, exist_ok=True)
    paths = {name: os.path.join(args.out_dir, f"shapes_{name}.png")
             for name in ("samples", "filters", "activations", "history")}
    predicted = model.predict(x_test[:16]).argmax(axis=1)
    names = datasets.SHAPE_CLASSES
    viz.plot_images(list(x_test[:16].transpose(0, 2, 3, 1)), columns=8, width=1.4, path=paths["samples"],
                    titles=[f"{names[t]}\n-> {names[p]}" for t, p in zip(y_test[:16], predicted)])
    first_conv = model.layers[0].params["weight"]
    viz.plot_filters(first_conv.sum(axis=1, keepdims=True), paths["filters"], title="first conv, RGB summed")
    stage_one_end = [layer for layer in model.layers if type(layer).__name__ == "ReLU"][6]
    viz.plot_activations(model, x_test[0], layer=stage_one_end, path=paths["activations"])
    viz.plot_history(history, paths["history"])
    for path in paths.values():
        print("wrote", path)
    return np.mean(predicted == y_test[:16])


if __name__ == "__main__":
    main()
